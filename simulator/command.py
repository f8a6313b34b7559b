"""`attiva simulate`: registered through the `attiva.commands` entry point (pyproject.toml)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    simulate = sub.add_parser(
        "simulate", help="run the pipeline over simulated days against customers who answer its messages",
        description="Moves the pipeline's clock forward a day at a time; simulated customers buy on their own and "
                    "because of the messages they received, and the measured uplift is printed beside what the "
                    "world planted. Generates the customers first when the landing folder is empty.")
    simulate.add_argument("--days", type=int, help="simulated days (default 7, one attribution window; 14 with "
                                                   "--rehearse, so the first week's windows close)")
    simulate.add_argument("--every", type=int, help="run the pipeline every N days (and on the last; default 1, "
                                                    "7 with --rehearse)")
    simulate.add_argument("--customers", type=int, default=20_000, help="people to generate on the first run")
    simulate.add_argument("--seed", type=int, default=42)
    simulate.add_argument("--rehearse", metavar="CAMPAIGN",
                          help="try one of the project's campaigns on simulated customers of their own (a folder, "
                               "warehouse and sandbox apart from everything else; no real vendor is reached) before "
                               "launch, and say whether its holdout can measure the uplift you expect")
    simulate.add_argument("--uplift", type=float, default=0.03,
                          help="with --rehearse: the chance a received message causes a purchase, for an average "
                               "person (default 0.03)")
    simulate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    args.days = args.days if args.days is not None else 14 if args.rehearse else 7
    args.every = args.every if args.every is not None else 7 if args.rehearse else 1
    if args.days < 1 or args.every < 1:
        print("attiva simulate: --days and --every must be at least 1")
        return 2
    if args.rehearse:
        return rehearse(args)
    from simulator.run import simulate

    return 0 if simulate(days=args.days, every=args.every, customers=args.customers, seed=args.seed).ok else 1


def rehearse(args: argparse.Namespace) -> int:
    from simulator.rehearsal import RehearsalError, describe
    from simulator.rehearsal import rehearse as run_rehearsal

    try:
        done = run_rehearsal(args.rehearse, args.uplift, args.days, args.every, args.customers, args.seed)
    except RehearsalError as exc:
        print(f"attiva simulate --rehearse: {exc}")
        return 2
    print(describe(done))
    return 0 if done.ok else 1
