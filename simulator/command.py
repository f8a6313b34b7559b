"""`attiva simulate`: registered through the `attiva.commands` entry point (pyproject.toml)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    simulate = sub.add_parser(
        "simulate", help="run the pipeline over simulated days against customers who answer its messages",
        description="Moves the pipeline's clock forward a day at a time; simulated customers buy on their own and "
                    "because of the messages they received, and the measured uplift is printed beside what the "
                    "world planted. Generates the customers first when the landing folder is empty.")
    simulate.add_argument("--days", type=int, default=7, help="simulated days (default 7, one attribution window)")
    simulate.add_argument("--every", type=int, default=1, help="run the pipeline every N days (and on the last)")
    simulate.add_argument("--customers", type=int, default=20_000, help="people to generate on the first run")
    simulate.add_argument("--seed", type=int, default=42)
    simulate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulator.run import simulate

    if args.days < 1 or args.every < 1:
        print("attiva simulate: --days and --every must be at least 1")
        return 2
    return 0 if simulate(days=args.days, every=args.every, customers=args.customers, seed=args.seed).ok else 1
