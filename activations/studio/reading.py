"""The console's reads of the warehouse: read-only, a few milliseconds a page, never in a writer's way;
and its few writes (pause, resume, a test send's record), each in a write connection as short.

DuckDB lets a writer (a dbt build, a sync, a Dagster step) in only while no other process has the
file open, so a page opens it, runs its queries and closes it; a writer that arrives meanwhile waits
in line those milliseconds (activations/warehouse.py). While a writer holds the file the page waits
at most READ_WAIT seconds, then answers "busy" naming the holder, rather than hang for the whole build.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from activations import warehouse

READ_WAIT = 5.0  # seconds a page waits for a writer to let go of the file


class NoWarehouse(LookupError):
    """There is no warehouse file yet."""


@contextmanager
def reading(path: Path) -> Iterator:
    """A read-only connection for one page; WarehouseBusy if a writer keeps the file past READ_WAIT."""
    with _open(path, read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        yield con


@contextmanager
def writing(path: Path) -> Iterator:
    """A write connection for one action (a pause, a test send's record): used for milliseconds and closed;
    WarehouseBusy if another writer keeps the file past READ_WAIT, as for reading."""
    with _open(path, read_only=False) as con:
        yield con


@contextmanager
def _open(path: Path, read_only: bool) -> Iterator:
    if not Path(path).exists():
        raise NoWarehouse(f"no warehouse at {path}: run `attiva demo`, or ingest and `attiva build` first")
    con = warehouse.open_when_free(Path(path), read_only=read_only, wait=READ_WAIT, say=lambda _: None)
    try:
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class Freshness:
    """When the data a page shows was built: the last dbt build's start and the pipeline's "now" it
    computed as of (ATTIVA_AS_OF); without a build marker, when the warehouse file was last written."""

    built_at: datetime | None
    as_of: datetime | None
    file_written_at: datetime

    def sentence(self) -> str:
        if self.built_at is None:
            return f"Data as of {utc_text(self.file_written_at)} (warehouse last written; no build marker found)."
        said = f"Data as of the build of {utc_text(self.built_at)}"
        if self.as_of is not None and abs((self.as_of - self.built_at).total_seconds()) > 60:
            said += f", computed for {utc_text(self.as_of)}"
        return said + "."


def freshness(con, path: Path) -> Freshness:
    """The build marker every dbt build writes (int_customers__affected's row without a customer)."""
    written = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    if not warehouse.has_table(con, "intermediate", "int_customers__affected"):
        return Freshness(None, None, written)
    rows = con.execute("select _run_at, _as_of from intermediate.int_customers__affected "
                       "where customer_id is null order by _run_at desc limit 1").fetchall()
    if not rows:
        return Freshness(None, None, written)
    row = rows[0]
    # dbt's run_started_at and as_of are UTC, stored without a zone.
    return Freshness(*(value.replace(tzinfo=UTC) if value else None for value in row), written)


def utc_text(value: datetime) -> str:
    """`value` as the pages print a time: 2026-11-20 12:00 UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
