"""`attiva generate`: registered through the `attiva.commands` entry point (pyproject.toml), so the
product's CLI lists it when the generator is installed without importing it."""

from __future__ import annotations

import argparse
from pathlib import Path

from activations import settings


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("generate", help="write synthetic landing files of a fictional retailer")
    gen.add_argument("--customers", type=int, default=10_000, help="number of real people (default 10000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed; the same seed writes the same files")
    gen.add_argument("--out", type=Path, default=None, help="landing folder (default ATTIVA_LANDING or data/landing)")
    gen.add_argument("--as-of", type=settings.instant, default=None, help="the 'now' the data is written around")
    gen.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from generator import generate

    out = args.out if args.out is not None else settings.landing_path()
    print(generate(customers=args.customers, seed=args.seed, out=out, as_of=args.as_of or settings.as_of()))
    return 0
