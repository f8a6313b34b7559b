"""The campaign measurement as of the last report: the three views the campaign pages show
(measurement.campaign_performance, campaign_uplift, campaign_variants), copied into tables of
schema `measured` by the run's report step, which reads them anyway.

Why: the views are computed over the whole ledger, engagement and orders on every read (20 to 40 s
for one campaign at 1M customers, benchmarks/studio_pages.py); a page cannot wait that long, and
the numbers only change when a run sends, receives engagement or builds. The copy is taken in one
transaction, with when (`measured.taken.taken_at`) and the ledger's last change it includes
(`ledger_changed_at`), so a page says as of when, and whether messages changed since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from activations import warehouse

SCHEMA = "measured"
MODELS = ("campaign_performance", "campaign_uplift", "campaign_variants")


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime  # naive UTC
    ledger_changed_at: datetime | None  # the ledger's latest updated_at the copy includes
    ledger_changed_since: bool  # a message was planned, sent or settled after the copy


def take(con, now: datetime | None = None) -> list[str]:
    """Copy the measurement views present into schema `measured` (`con` writes); the models copied."""
    present = [m for m in MODELS if warehouse.has_table(con, "measurement", m)]
    if not present:
        return []
    taken = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    changed = _ledger_changed_at(con)
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for model in present:
            con.execute(f"create or replace table {SCHEMA}.{model} as select * from measurement.{model}")
        con.execute(f"create or replace table {SCHEMA}.taken (taken_at timestamp, ledger_changed_at timestamp)")
        con.execute(f"insert into {SCHEMA}.taken values (?, ?)", [taken, changed])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return present


def latest(con) -> Snapshot | None:
    """The copy the last report took, None if there is none (read-only is enough)."""
    if not warehouse.has_table(con, SCHEMA, "taken"):
        return None
    row = con.execute(f"select taken_at, ledger_changed_at from {SCHEMA}.taken").fetchone()
    if row is None:
        return None
    changed = _ledger_changed_at(con)
    return Snapshot(row[0], row[1], changed is not None and (row[1] is None or changed > row[1]))


def _ledger_changed_at(con) -> datetime | None:
    if not warehouse.has_table(con, "activation", "message_ledger"):
        return None
    return con.execute("select max(updated_at) from activation.message_ledger").fetchone()[0]
