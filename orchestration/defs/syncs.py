"""One asset per declared sync (audience x destination), generated from the dbt manifest.

A sync asset depends on its audience, so the audience's blocking quality gate stops it, and
it follows its audience by itself (declarative automation) once the gate has passed. Each
materialization records what the engine did (planned, confirmed, rejected, invalid, audience
size, duration) as metadata, so the UI plots every audience's size and every sync's health.

Destinations are resolved when a sync runs, not when definitions load: URLs and secrets come
from the environment of the run (ATTIVA_<NAME>_URL / _TOKEN), never from Dagster config.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from activations import manifest as declarations
from activations import settings
from activations.destinations.config import read_destinations
from activations.engine.run import SyncFailed, SyncProgress, SyncRefused, SyncResult
from activations.syncs import last_runs
from activations.syncs import run as run_sync
from orchestration.defs.dbt import MANIFEST
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.broken import broken_asset

SYNC_GROUP = "syncs"


class Destinations(dg.ConfigurableResource):
    """destinations.yml: the destination instances syncs send to."""

    path: str = Field(default="", description="The destinations file; empty = ATTIVA_DESTINATIONS or destinations.yml.")

    def file(self) -> Path:
        return Path(self.path) if self.path else settings.destinations_path()


class SyncConfig(dg.Config):
    force: bool = Field(default=False, description="Go ahead even when a guard refuses (mass removal, shrink).")
    full_resync: bool = Field(default=False, description="Resend every row, whatever the snapshot says.")


def sync_key(sync: declarations.Sync) -> dg.AssetKey:
    return dg.AssetKey(["syncs", sync.name])


def _metadata(result: SyncResult, totals: dict | None = None) -> dict:
    """This run's counts, then what the destination holds now and the totals over every run
    (`attiva syncs` shows the same): a quiet run that confirms 0 rows plots as the flat line it is."""
    plan = result.plan
    totals = totals or {}
    return {
        "status": result.status,
        "audience_rows": plan.audience_rows if plan else 0,
        "eligible_rows": plan.eligible_rows if plan else 0,
        "planned": result.planned,
        "adds": plan.adds if plan else 0,
        "updates": plan.updates if plan else 0,
        "removes": plan.removes if plan else 0,
        "sent": result.sent,
        "confirmed": result.confirmed,
        "rejected": result.rejected,
        "invalid": result.invalid,
        "resent": result.resent,
        "paused_seconds": round(result.paused_seconds, 2),
        "duration_seconds": round(result.seconds, 2),
        "run_id": result.run_id,
        "destination_holds": totals.get("holds", 0),
        "confirmed_all_runs": totals.get("confirmed_total", 0),
        "runs": totals.get("runs", 0),
        "pending_rejects": totals.get("pending_rejects", 0),
    }


def _totals(warehouse: Warehouse, sync_name: str) -> dict:
    with warehouse.connect(read_only=True) as con:
        return last_runs(con).get(sync_name, {})


def _sync_asset(sync: declarations.Sync, destination_type: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=sync_key(sync),
        deps=[dg.AssetKey([sync.audience.layer, sync.audience.name])],
        group_name=SYNC_GROUP,
        kinds={destination_type},
        pool=WAREHOUSE_POOL,  # it writes the engine's state in the warehouse
        description=f"{sync.audience.name} -> {sync.destination} ({sync.mode}); consent: {sync.consent or 'none'}.",
        metadata={"audience": sync.audience.name, "destination": sync.destination, "mode": sync.mode},
        automation_condition=dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    )
    def _sync(context: dg.AssetExecutionContext, config: SyncConfig, warehouse: Warehouse,
              destinations: Destinations) -> dg.MaterializeResult:
        last_logged = [0.0]

        def progress(status: SyncProgress) -> None:
            done, total = status.done, status.total
            if total and (done - last_logged[0] >= max(total / 10, 1) or done == total):
                last_logged[0] = done
                context.log.info(f"{sync.name}: {done:,} of {total:,} rows, {status.rows_per_second():,.0f} rows/s"
                                 + (f", {status.resent:,} re-sent" if status.resent else ""))

        # Read again now (it may have changed since loading); another instance's mistake does not stop this one.
        configs = read_destinations(destinations.file())
        if sync.destination not in configs.configs:
            problem = configs.problem(sync.destination) or f"{sync.destination!r} is no longer in destinations.yml"
            raise dg.Failure(description=f"{sync.name} cannot run: {problem}", allow_retries=False)
        try:
            result = run_sync(sync, warehouse_path=warehouse.file(), destinations=configs.configs,
                              force=config.force, full_resync=config.full_resync, on_progress=progress)
        except (SyncRefused, SyncFailed) as exc:
            raise dg.Failure(description=str(exc), metadata=_metadata(exc.result, _totals(warehouse, sync.name)),
                             allow_retries=False) from None
        context.log.info(str(result))
        metadata = _metadata(result, _totals(warehouse, sync.name))
        if result.status == "stopped":
            raise dg.Failure(description=f"{sync.name} stopped: {result.error}", metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    return _sync


def declared_syncs() -> declarations.Declarations:
    """The syncs declared in the audiences' YAML, the broken ones beside the runnable ones."""
    return declarations.declared_syncs(MANIFEST, read_destinations())


def sync_assets() -> list[dg.AssetsDefinition]:
    """An asset for every sync declared in the audiences' YAML; a broken one's fails with its error."""
    found = declared_syncs()
    types = {name: config.type for name, config in read_destinations().configs.items()}
    return [_sync_asset(sync, types[sync.destination]) for sync in found.syncs] + [
        broken_asset(dg.AssetKey(["syncs", broken.name]), error=broken.reason, group_name=SYNC_GROUP,
                     deps=[dg.AssetKey(["audiences", broken.audience])],
                     kinds={types[broken.destination]} if broken.destination in types else None)
        for broken in found.broken]


def definitions() -> dg.Definitions:
    """A sync asset per declaration, and destinations.yml they send to."""
    return dg.Definitions(assets=sync_assets(), resources={"destinations": Destinations()})
