"""Generator benchmark: write the synthetic landing data for N customers, print time, rows, MB and peak memory.

    .venv/bin/python benchmarks/generate.py [--customers 1000000] [--seed 42] [--dir /tmp/attiva-gen] [--keep]

Runs `generator.generate` once into a temporary folder (removed afterwards
unless --keep) and prints wall seconds, rows per source, MB written and the process's
peak resident memory. The target is 1,000,000 customers in 60 s or less on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from generator import generate

AS_OF = datetime(2025, 6, 3, 8, 30, tzinfo=UTC)  # pinned, so runs are comparable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the files after the run")
    args = parser.parse_args()

    out = args.dir or Path(tempfile.mkdtemp(prefix="attiva-gen-"))
    try:
        started = time.perf_counter()
        summary = generate(customers=args.customers, seed=args.seed, out=out, as_of=AS_OF)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        total_rows = sum(summary.rows.values())
        print(f"generate: {args.customers:,} customers, seed {args.seed}, as of {AS_OF.isoformat()}")
        for name, rows in summary.rows.items():
            print(f"  {name:<18} {rows:>12,} rows")
        print(f"  {'total':<18} {total_rows:>12,} rows in {len(summary.files)} files")
        print(f"wall {wall:.1f} s | {total_rows / wall:,.0f} rows/s | {summary.bytes_written / 1e6:,.0f} MB written"
              f" | peak RSS {peak_mb:,.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
