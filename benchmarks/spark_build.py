"""The full warehouse build on DuckDB and on a local Spark, side by side, from the same raw tables.

    .venv/bin/python benchmarks/spark_build.py --customers 2000
    .venv/bin/python benchmarks/spark_build.py --customers 100000 --keep /tmp/attiva-spark-100k

Needs the `spark` extra (pip install -e '.[spark]') and Java 17. Prints wall seconds per step:
ingest into DuckDB, dbt build on DuckDB, copying the raw tables to Spark (Parquet), dbt build
on Spark (local[*], every incremental model rebuilt as a table), and the Spark/DuckDB ratio;
then the biggest audience synced from each warehouse to a file export (the engine's plan,
commit and run log on each).
Both builds run the whole project with every test; Spark's cost on small data is mostly fixed
per statement (planning, scheduling), which a cluster does not remove.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from activations.build import build_warehouse
from activations.ingest import load_landing
from generator import generate

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    print(f"{label:<40} {seconds:8.1f} s", flush=True)
    return value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="attiva-spark-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ["ATTIVA_SPARK_DIR"] = str(root / "spark")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    print(f"{args.customers:,} customers in {root}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    timed("generate landing files", lambda: generate(customers=args.customers, seed=args.seed, out=landing,
                                                        as_of=AS_OF))
    timed("ingest into DuckDB", lambda: load_landing(landing, warehouse))
    duck, _ = timed("dbt build on DuckDB (full)", lambda: build_warehouse(as_of=AS_OF, warehouse=warehouse,
                                                                          full_refresh=True))
    assert duck.ok, str(duck)

    from activations import spark

    def land():
        with spark.session() as session:
            return spark.land_raw(session, warehouse)

    timed("copy raw tables to Spark (Parquet)", land)
    # build_warehouse lands the raw tables again (that is what `attiva build --target spark` does);
    # BuildResult.seconds is dbt's own run.
    spark_build, _ = timed("land + dbt build on Spark", lambda: build_warehouse(as_of=AS_OF, warehouse=warehouse,
                                                                                target="spark"))
    assert spark_build.ok, f"{spark_build}\n{spark_build.output[-3000:]}"
    print(f"{'dbt build: DuckDB / Spark':<40} {duck.seconds:8.1f} s / {spark_build.seconds:.1f} s "
          f"(Spark {spark_build.seconds / duck.seconds:.1f}x); load average now {os.getloadavg()[0]:.1f}")
    sync_from_both(root, warehouse)


def sync_from_both(root: Path, warehouse: Path) -> None:
    """The biggest audience (email subscribers) synced from each warehouse to a file export:
    the engine's plan, commit and run log on DuckDB and on Spark, with a sink that costs nothing."""
    from dataclasses import replace

    from activations.destinations import load_destinations
    from activations.syncs import declared, open_warehouse

    os.environ["ATTIVA_DATA"] = str(root)  # the export folder is relative to it
    base = {s.name: s for s in declared()}["aud_email_subscribers__sendgrid"]
    destinations = load_destinations()
    for target in ("duckdb", "spark"):
        sync = replace(base, name=f"bench_subscribers_{target}", destination="file_export")
        with open_warehouse(target, warehouse) as con:
            _sync_twice(target, sync, con, destinations)


def _sync_twice(target: str, sync, con, destinations) -> None:
    from activations.syncs import run

    first, _ = timed(f"sync from {target}: first run", lambda: run(sync, con=con, destinations=destinations))
    again, _ = timed(f"sync from {target}: nothing changed", lambda: run(sync, con=con, destinations=destinations))
    print(f"{'':<40} {first.confirmed:,} rows confirmed, then {again.planned:,} planned", flush=True)


if __name__ == "__main__":
    main()
