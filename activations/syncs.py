"""Declared syncs, run against the warehouse: what the CLI and Dagster call.

Reads the declarations from the dbt manifest and the destinations from
destinations.yml, opens the warehouse, builds the client and runs the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from activations import settings, warehouse
from activations.destinations import DestinationConfig, build_client, load_destinations
from activations.engine.deliver import RetryPolicy
from activations.engine.run import DEFAULT_POLICY, Progress, SyncResult, run_sync
from activations.erasure import drive_erasures
from activations.manifest import Sync, load_manifest, syncs

log = logging.getLogger(__name__)


class UnknownSync(LookupError):
    """A sync name that is not declared, with the names that are."""


def declared(manifest_path: Path | None = None, destinations_path: Path | None = None) -> list[Sync]:
    """Every sync declared in the audiences' YAML, validated against destinations.yml."""
    return syncs(load_manifest(manifest_path), load_destinations(destinations_path))


def find(name: str, all_syncs: list[Sync]) -> Sync:
    for sync in all_syncs:
        if sync.name == name:
            return sync
    known = ", ".join(s.name for s in all_syncs) or "none declared"
    raise UnknownSync(f"no sync named {name!r}; declared syncs: {known}")


def target_name(target: str | None = None) -> str:
    """The warehouse the engine works on: `target`, else ATTIVA_DBT_TARGET (as dbt), else duckdb."""
    name = target or settings.dbt_target() or "duckdb"
    if name not in ("duckdb", "spark"):
        raise ValueError(f"unknown target {name!r}: the engine runs on duckdb or spark")
    return name


@contextmanager
def open_warehouse(target: str | None = None, path: Path | None = None) -> Iterator:
    """The engine's warehouse: the DuckDB file (ATTIVA_WAREHOUSE), or the local Spark target's tables
    (ATTIVA_SPARK_DIR, the same session settings as dbt's `spark` target)."""
    if target_name(target) == "spark":
        from activations import spark
        from activations.spark_warehouse import SparkWarehouse

        with spark.session() as session:
            yield SparkWarehouse(session)
        return
    with warehouse.connect(path, memory_limit=settings.sync_memory_limit(),
                           checkpoint_threshold=settings.SYNC_CHECKPOINT_THRESHOLD) as con:
        yield con


def run(sync: Sync, *, warehouse_path: Path | None = None, destinations: dict[str, DestinationConfig] | None = None,
        force: bool = False, full_resync: bool = False, only_rejected: bool = False, now: datetime | None = None,
        policy: RetryPolicy = DEFAULT_POLICY, on_progress: Progress | None = None,
        expect_fingerprint: str | None = None, reviewed_plan: str | None = None, target: str | None = None,
        con=None) -> SyncResult:
    """Run one sync; raises SyncRefused / SyncFailed as the engine does.

    On `con` if given (an open warehouse: several Spark syncs share one session), else on a
    warehouse opened for this run. `expect_fingerprint` and `reviewed_plan` (from a reviewed plan
    file) refuse the run if the plan changed since, other than by what earlier runs of it delivered.
    """
    destinations = destinations if destinations is not None else load_destinations()
    client = build_client(destinations[sync.destination].for_sync(sync.destination_options))
    options = dict(now=now, force=force, full_resync=full_resync, only_rejected=only_rejected, policy=policy,
                   on_progress=on_progress, expect_fingerprint=expect_fingerprint, reviewed_plan=reviewed_plan)
    try:
        if con is not None:
            erase_first(con, sync, destinations)
            return run_sync(con, sync, client, **options)
        with open_warehouse(target, warehouse_path) as opened:
            erase_first(opened, sync, destinations)
            return run_sync(opened, sync, client, **options)
    finally:
        client.close()


def erase_first(con, sync: Sync, destinations: dict[str, DestinationConfig]) -> None:
    """Drive the pending erasures at the sync's destination before it runs; what stays pending is logged,
    and the sync goes on (its plan never sends an erased person anyway)."""
    try:
        pending = drive_erasures(con, destinations, only=sync.destination)
    except Exception as exc:  # noqa: BLE001 - the erasure stays pending and says so; the sync is not its hostage
        log.warning("erasures at %s could not be tried: %s", sync.destination, type(exc).__name__)
        return
    for status in pending:
        log.warning("erasure %s at %s still pending after %s attempt(s): %s", status.request_id, status.destination,
                    status.attempts, status.last_error)


def last_runs(con) -> dict[str, dict]:
    """The latest run of every sync that ran, with what the destination holds now and the totals over
    every run (read-only is fine): a quiet run that confirms 0 rows is not an outage."""
    if not warehouse.has_table(con, "activation", "sync_runs"):
        return {}
    # dbt creates sync_runs empty for the measurement models; the other tables come with the first sync.
    rejects = ("select sync_name, count(*) as pending from activation.sync_rejects group by sync_name"
               if warehouse.has_table(con, "activation", "sync_rejects") else
               "select cast(null as string) as sync_name, 0 as pending where false")
    holds = ("select sync_name, count(*) as rows_held from activation.sync_snapshots group by sync_name"
             if warehouse.has_table(con, "activation", "sync_snapshots") else
             "select cast(null as string) as sync_name, 0 as rows_held where false")
    rows = con.execute(f"""
        with ranked as (
            select r.*, row_number() over (partition by sync_name order by started_at desc) as n,
                   count(*) over (partition by sync_name) as runs,
                   sum(coalesce(confirmed, 0)) over (partition by sync_name) as confirmed_total
            from activation.sync_runs as r
        ),
        rejects as ({rejects}),
        holds as ({holds})
        select ranked.sync_name, status, started_at, duration_seconds, audience_rows, planned, sent, confirmed,
               rejected, invalid, error, coalesce(rejects.pending, 0), coalesce(holds.rows_held, 0), runs,
               confirmed_total
        from ranked
        left join rejects on rejects.sync_name = ranked.sync_name
        left join holds on holds.sync_name = ranked.sync_name
        where n = 1""").fetchall()
    keys = ("sync_name", "status", "started_at", "seconds", "audience_rows", "planned", "sent", "confirmed", "rejected",
            "invalid", "error", "pending_rejects", "holds", "runs", "confirmed_total")
    return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}
