"""DuckDB connections to the warehouse file, waiting in line when another process has it.

DuckDB lets one process write a file at a time, and while it does no other process may even
read it. Every process here (the CLI, dbt, Dagster's steps) opens the file for as short as it
can and closes it; one that finds it taken waits, retrying with backoff, up to
ATTIVA_WAREHOUSE_WAIT seconds (default 600), saying once who holds it. Only after that does it
fail, with WarehouseBusy naming the holder. docs/warehouse-sharing.md has the measurements
behind this choice (against DuckLake, which lets several processes write).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from activations import settings
from activations.engine.dialect import has_table  # noqa: F401 - the one check, for DuckDB and Spark

WAIT_VARIABLE = "ATTIVA_WAREHOUSE_WAIT"
FIRST_RETRY, LONGEST_RETRY = 0.02, 0.25  # seconds between tries: a failed try costs ~1 ms, a late one a turn
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusy(RuntimeError):
    """Another process kept the warehouse past the wait; says which and how to wait longer."""


def wait_seconds() -> float:
    """How long to wait for a warehouse another process holds (settings.warehouse_wait)."""
    return settings.warehouse_wait()


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether DuckDB refused the file because another process holds its lock."""
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def holder(exc: BaseException) -> str:
    """The process holding the lock, as DuckDB names it, with its command line when this machine shows it."""
    match = _HOLDER.search(str(exc))
    if not match:
        return "another process"
    pid = match["pid"]
    try:
        command = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
    except OSError:
        command = match["program"]
    return f"PID {pid} ({command[:160]})"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_when_free(path: Path, read_only: bool = False, wait: float | None = None,
                   say: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """duckdb.connect(path), waiting in line while another process holds the file (see the module doc);
    `say` (default: stderr, which Dagster keeps in the step's log) hears once that it waits and for whom."""
    wait = wait_seconds() if wait is None else wait
    say = say or _say
    started = time.monotonic()
    delay, told = FIRST_RETRY, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            waited = time.monotonic() - started
            if waited >= wait:
                raise WarehouseBusy(
                    f"the warehouse {path} is still in use by {holder(exc)} after {waited:.0f}s; try again when it "
                    f"finishes, or wait longer with {WAIT_VARIABLE}=<seconds>") from None
            if not told:
                say(f"waiting for the warehouse {path}, held by {holder(exc)} (up to {wait:.0f}s, {WAIT_VARIABLE})")
                told = True
            time.sleep(min(delay, wait - waited))
            delay = min(delay * 2, LONGEST_RETRY)


def wait_until_free(path: Path, wait: float | None = None) -> None:
    """Return once no other process holds the warehouse (for a subprocess, dbt, about to open it)."""
    if Path(path).exists():
        open_when_free(path, wait=wait).close()


@contextmanager
def connect(path: Path | None = None, read_only: bool = False, memory_limit: str | None = None,
            checkpoint_threshold: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (ATTIVA_WAREHOUSE by default), waiting in line if another process has it, and
    close it on exit.

    `memory_limit` caps DuckDB's memory (it spills to disk past it); unset, DuckDB takes up to 80 %
    of the machine's RAM for big joins, which a sync running beside other work must not.
    `checkpoint_threshold` lets the write-ahead log grow that far before DuckDB writes it into
    the file (default 16MB): a sync's ledger rows are deleted again when the run ends, so
    checkpointing them on the way (0.2-0.35 s each, 20 per 1M-row sync) is wasted work.
    """
    path = Path(path or settings.warehouse_path())
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = open_when_free(path, read_only=read_only)
    con.execute("set enable_progress_bar = false")  # it would draw over the CLI's own bar and into logs
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit}'")
    if checkpoint_threshold:
        con.execute(f"set checkpoint_threshold = '{checkpoint_threshold}'")
    try:
        yield con
    finally:
        con.close()
