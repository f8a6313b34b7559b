"""What quoted values over several lines cost ingestion: one orders file, loaded three ways.

    .venv/bin/python benchmarks/ingest_quotes.py [--rows 300000]

plain: no quotes (no line walk); multiline: one real quoted value over two lines (the line
walk runs and finds nothing); runaway: one quote left open near the top (the walk finds it
and the file is read again without the stray line). Prints wall and CPU time, and the rows
loaded and quarantined: every good row should load.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activations.ingest import load_landing  # noqa: E402
from benchmarks.ingest import cpu_seconds  # noqa: E402

AT = "2024-05-01T10:00:00Z"
HEADER = "order_id,ordered_at,status,total_amount,channel,utm_campaign"


def _write(folder: Path, kind: str, rows: int) -> None:
    lines = [HEADER] + [f"O{i},{AT},completed,{i % 500},web,spring" for i in range(rows)]
    if kind == "multiline":
        lines[10] = f'O9,{AT},completed,1,web,"spring\nsale"'
    elif kind == "runaway":
        lines[10] = f'O9,{AT},"completed,1,web,'
    (folder / "shop/orders").mkdir(parents=True)
    (folder / "shop/orders/o.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000, help="rows in the file (default 300,000)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="attiva-bench-quotes-"))
    try:
        for kind in ("plain", "multiline", "runaway"):
            _write(work / kind / "landing", kind, args.rows)
            started, cpu = time.perf_counter(), cpu_seconds()
            report = load_landing(work / kind / "landing", work / kind / "warehouse.duckdb")
            wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            print(
                f"{kind}: {wall:.2f}s wall, {cpu:.2f} CPU-s; "
                f"{report.rows_loaded:,} rows loaded, {report.rows_quarantined:,} quarantined"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
