"""`attiva demo`: registered through the `attiva.commands` entry point (pyproject.toml)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="generate data, ingest it, build the warehouse and print a summary")
    demo.add_argument("--customers", type=int, default=100_000, help="people to generate on the first run")
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from demo.quick import run_demo

    return run_demo(customers=args.customers, seed=args.seed)
