"""Ingestion benchmark: write a synthetic landing folder of a few million rows, load it, print rows/s.

    .venv/bin/python benchmarks/ingest.py [--rows 3000000] [--dir /tmp/attiva-bench]

The files are generated here from the landing contract with DuckDB (CSV, gzipped CSV and
JSON lines, a few broken lines in each), so the benchmark depends on nothing but ingestion.
It then times a first load and a second, incremental load that must find nothing new.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from activations.ingest import load_landing
from activations.ingest.contract import SOURCES_BY_NAME, Column, Source

# Share of the rows per source, and its format; roughly the shape of a retailer's exports.
MIX = {
    "events": (0.45, "jsonl"),
    "shop_order_items": (0.18, "csv"),
    "shop_orders": (0.10, "csv"),
    "email_engagement": (0.10, "csv"),
    "crm_contacts": (0.07, "csv"),
    "shop_customers": (0.05, "csv.gz"),
    "consent": (0.05, "csv"),
}
ROWS_PER_FILE = 500_000


def _value(column: Column) -> str:
    """SQL for a plausible value of `column` at row `i`, as text."""
    i = "i"
    if column.type == "bigint":
        return f"({i} % 7 + 1)::varchar"
    if column.type == "double":
        return f"round(({i} * 37 % 100000) / 100.0, 2)::varchar"
    if column.type == "boolean":
        return f"case when {i} % 3 = 0 then 'false' else 'true' end"
    if column.type == "date":
        return f"(date '1950-01-01' + ({i} * 13 % 20000)::int)::varchar"
    if column.type == "timestamp":
        return f"strftime(timestamp '2023-01-01' + to_seconds({i} * 17 % 60000000), '%Y-%m-%dT%H:%M:%SZ')"
    if column.values:  # the contract's accepted values, in turn
        return f"{[*column.values]}[{i} % {len(column.values)} + 1]"
    if column.pattern is not None:  # the only one is a country code
        return f"['IT', 'FR', 'DE', 'ES'][{i} % 4 + 1]"
    if column.name == "email":
        return f"'user' || ({i} * 7919 % 1000003) || '@example.com'"
    if column.name.endswith("_id"):
        return f"'{column.name[:3].upper()}' || {i}"
    text = f"'{column.name}-' || ({i} % 997)"
    return text if column.required else f"case when {i} % 5 = 0 then NULL else {text} end"


def _write_file(con: duckdb.DuckDBPyConnection, source: Source, kind: str, start: int, rows: int, path: Path) -> None:
    columns = ", ".join(f"{_value(c)} as {c.name}" for c in source.columns)
    query = f"select {columns} from range({start}, {start + rows}) as t(i)"
    if kind == "jsonl":
        con.execute(f"copy ({query}) to '{path}' (format json)")
        broken = ['{"event_id": "broken"', '{"event_id": "E-bad", "event_type": "x", "occurred_at": "yesterday"}']
    else:
        con.execute(
            f"copy ({query}) to '{path}' (format csv, header true{', compression gzip' if kind == 'csv.gz' else ''})"
        )
        broken = [",".join(["x"] * (len(source.columns) - 1)), ",".join([""] * len(source.columns))]
    opener = gzip.open if kind == "csv.gz" else open
    with opener(path, "at", encoding="utf-8") as stream:  # type: ignore[operator]
        stream.write("\n".join(broken) + "\n")


def generate(landing: Path, rows: int) -> int:
    """Write about `rows` rows of landing files; returns the number of data lines written."""
    written = 0
    with duckdb.connect() as con:
        for name, (share, kind) in MIX.items():
            source = SOURCES_BY_NAME[name]
            folder = landing / source.folder
            folder.mkdir(parents=True, exist_ok=True)
            total = int(rows * share)
            for part, start in enumerate(range(0, total, ROWS_PER_FILE)):
                count = min(ROWS_PER_FILE, total - start)
                _write_file(con, source, kind, start, count, folder / f"part-{part:03d}.{kind}")
                written += count + 2
    return written


def cpu_seconds() -> float:
    """User + system CPU seconds this process (all its threads) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows to generate (default 3,000,000)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="attiva-bench-"))
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    shutil.rmtree(landing, ignore_errors=True)
    warehouse.unlink(missing_ok=True)
    try:
        started = time.perf_counter()
        lines = generate(landing, args.rows)
        size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
        print(
            f"generated {lines:,} lines in {len(list(landing.rglob('*.*')))} files, "
            f"{size / 1e6:,.0f} MB, in {time.perf_counter() - started:.1f}s"
        )

        started, cpu = time.perf_counter(), cpu_seconds()
        report = load_landing(landing, warehouse)
        first, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        rows = report.rows_loaded + report.rows_quarantined
        print(report)
        print(f"first load: {rows:,} rows in {first:.1f}s = {rows / first:,.0f} rows/s")
        # Wall time depends on what else the machine runs; CPU time per row does not much.
        print(f"  CPU {cpu:.1f}s on {os.cpu_count()} cores = {cpu / rows * 1e6:.2f} CPU-s per million rows")

        started = time.perf_counter()
        again = load_landing(landing, warehouse)
        print(f"second load (nothing new): {time.perf_counter() - started:.2f}s, {again.rows_loaded} rows loaded")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
