"""DuckDB connections to the warehouse file.

DuckDB lets one process write a file at a time: writers open it briefly and
close it, readers open it read-only, so the CLI, dbt and Dagster steps can
take turns without holding a lock between steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from activations import settings
from activations.engine.dialect import has_table  # noqa: F401 - the one check, for DuckDB and Spark


@contextmanager
def connect(path: Path | None = None, read_only: bool = False, memory_limit: str | None = None,
            checkpoint_threshold: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (ATTIVA_WAREHOUSE by default) and close it on exit.

    `memory_limit` caps DuckDB's memory (it spills to disk past it); unset, DuckDB takes up to 80 %
    of the machine's RAM for big joins, which a sync running beside other work must not.
    `checkpoint_threshold` lets the write-ahead log grow that far before DuckDB writes it into
    the file (default 16MB): a sync's ledger rows are deleted again when the run ends, so
    checkpointing them on the way (0.2-0.35 s each, 20 per 1M-row sync) is wasted work.
    """
    path = Path(path or settings.warehouse_path())
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set enable_progress_bar = false")  # it would draw over the CLI's own bar and into logs
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit}'")
    if checkpoint_threshold:
        con.execute(f"set checkpoint_threshold = '{checkpoint_threshold}'")
    try:
        yield con
    finally:
        con.close()
