"""The `attiva` command: parse arguments, call the library, print the outcome.

Commands stay thin; each imports its module lazily so `attiva --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from activations import settings

Handler = Callable[[argparse.Namespace], int]


def _iso_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_generate(args: argparse.Namespace) -> int:
    from activations.generate import generate

    summary = generate(customers=args.customers, seed=args.seed, out=args.out, as_of=args.as_of or settings.as_of())
    print(summary)
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from activations.ingest import load_landing

    if not Path(args.landing).is_dir():
        print(f"attiva ingest: landing folder {args.landing} does not exist (set ATTIVA_LANDING or --landing)",
              file=sys.stderr)
        return 2
    report = load_landing(args.landing, args.warehouse)
    print(report)
    return 1 if report.failed_files else 0


def cmd_build(args: argparse.Namespace) -> int:
    from activations.build import build_warehouse

    result = build_warehouse(as_of=args.as_of, warehouse=args.warehouse, select=args.select,
                             full_refresh=args.full_refresh, echo=args.verbose)
    print(result)
    return 0 if result.ok else 1


def cmd_summary(args: argparse.Namespace) -> int:
    from activations.summary import summarize

    if not Path(args.warehouse).exists():
        print(f"attiva summary: no warehouse at {args.warehouse}: run `attiva demo` or ingest and build first",
              file=sys.stderr)
        return 2
    print(summarize(args.warehouse))
    return 0


def cmd_contract(args: argparse.Namespace) -> int:
    from activations.ingest.docs import contract_markdown

    print(contract_markdown())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from activations.demo import run_demo

    return run_demo(customers=args.customers, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attiva", description="Warehouse-native marketing activation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="write synthetic landing files of a fictional retailer")
    gen.add_argument("--customers", type=int, default=10_000, help="number of real people (default 10000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed; the same seed writes the same files")
    gen.add_argument("--out", type=Path, default=None, help="landing folder (default ATTIVA_LANDING or data/landing)")
    gen.add_argument("--as-of", type=_iso_datetime, default=None, help="the 'now' the data is written around")
    gen.set_defaults(handler=cmd_generate)

    ing = sub.add_parser("ingest", help="load new landing files into the warehouse's raw tables")
    ing.add_argument("--landing", type=Path, default=None, help="landing folder (default ATTIVA_LANDING)")
    ing.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    ing.set_defaults(handler=cmd_ingest)

    bld = sub.add_parser("build", help="run dbt build (models and tests) on the warehouse")
    bld.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    bld.add_argument("--as-of", type=_iso_datetime, default=None, help="the pipeline's 'now' (default ATTIVA_AS_OF)")
    bld.add_argument("--select", default=None, help="dbt selection, e.g. 'aud_champions+'")
    bld.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    bld.add_argument("--verbose", action="store_true", help="show dbt's own output")
    bld.set_defaults(handler=cmd_build)

    summ = sub.add_parser("summary", help="print customers, merges and audience sizes")
    summ.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    summ.set_defaults(handler=cmd_summary)

    con = sub.add_parser("contract", help="print the landing contract (folders, formats, columns) as Markdown")
    con.set_defaults(handler=cmd_contract)

    from activations.sandbox.server import add_arguments as sandbox_arguments
    from activations.sandbox.server import run_from_args as run_sandbox

    box = sub.add_parser("sandbox", help="serve every destination's API on 127.0.0.1 (no account needed)")
    sandbox_arguments(box)
    box.set_defaults(handler=run_sandbox)

    demo = sub.add_parser("demo", help="generate data, ingest it, build the warehouse and print a summary")
    demo.add_argument("--customers", type=int, default=100_000, help="people to generate on the first run")
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "out", "unset") is None:
        args.out = settings.landing_path()
    if getattr(args, "landing", "unset") is None:
        args.landing = settings.landing_path()
    if getattr(args, "warehouse", "unset") is None:
        args.warehouse = settings.warehouse_path()
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
