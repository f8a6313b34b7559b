"""Sensors: new landing files start a refresh; a failed run leaves an alert in the warehouse."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.defs.ingest import ingest_landing
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse
from orchestration.lib import alerts, landing_watch

# Ingestion, everything downstream of it (dbt, the gates, later the syncs), and what those
# read besides the raw tables (dbt seeds): a first run on an empty warehouse must build them too.
landing_refresh = dg.define_asset_job(
    "landing_refresh",
    selection=dg.AssetSelection.assets(ingest_landing).downstream().upstream(),
    description="Load new landing files, rebuild what depends on them, run the gates.",
    tags={"attiva/trigger": "landing"},
)


@dg.sensor(job=landing_refresh, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="One run per set of new or changed landing files (by name, size and mtime).")
def landing_files(context: dg.SensorEvaluationContext, landing: Landing) -> dg.SensorResult | dg.SkipReason:
    folder = landing.folder()
    if not folder.is_dir():
        return dg.SkipReason(f"the landing folder {folder} does not exist")
    changes = landing_watch.look(folder, context.cursor, now=datetime.now(UTC))
    settling = f"; {len(changes.settling)} still being written" if changes.settling else ""
    if not changes.changed:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"nothing new in {folder}{settling}"), cursor=changes.cursor)
    context.log.info(f"{len(changes.changed)} new or changed landing file(s): {', '.join(changes.changed[:10])}{settling}")
    request = dg.RunRequest(run_key=changes.run_key(), tags={"attiva/landing_files": str(len(changes.changed))})
    return dg.SensorResult(run_requests=[request], cursor=changes.cursor)


# Declarative automation: dbt models follow upstream changes made outside a full run (dbt.py
# gives them AutomationCondition.eager()); running by default, like the other sensors.
automation = dg.AutomationConditionSensorDefinition(
    "warehouse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    run_tags={"attiva/trigger": "automation"},
)


class AlertConfig(dg.Config):
    run_id: str
    job_name: str
    asset_key: str | None = None
    step_key: str | None = None
    check_name: str | None = None
    error: str
    failed_at: str  # ISO 8601, UTC


class RecordAlertsConfig(dg.Config):
    alerts: list[AlertConfig]


# Retried with backoff (about 5 minutes in all): a process outside Dagster (`attiva build`, a
# notebook) may hold the warehouse's write lock, and an alert is worth waiting for.
@dg.op(pool=WAREHOUSE_POOL, retry_policy=dg.RetryPolicy(max_retries=5, delay=10, backoff=dg.Backoff.EXPONENTIAL))
def record_alerts(context: dg.OpExecutionContext, config: RecordAlertsConfig, warehouse: Warehouse) -> None:
    """Write the alerts into activation.alerts."""
    found = [alerts.Alert(a.run_id, a.job_name, a.asset_key, a.step_key, a.check_name, a.error,
                          datetime.fromisoformat(a.failed_at)) for a in config.alerts]
    new = alerts.record(warehouse.file(), found)
    context.log.info(f"{new} alert(s) recorded in {alerts.ALERTS_TABLE}")


# Alerts are written by a run of their own rather than by the sensor: the run queues for the
# warehouse pool like every other writer, so it never meets a dbt build holding DuckDB's lock.
@dg.job(description="Record the alerts of a failed run in activation.alerts (requested by run_failure_alerts).")
def record_run_alerts():
    record_alerts()


@dg.run_failure_sensor(request_job=record_run_alerts, minimum_interval_seconds=30,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Log and record in activation.alerts what failed in a failed run.")
def run_failure_alerts(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    if run.job_name == record_run_alerts.name:
        # Requesting another alert run could loop; the failure is in the Dagster UI and this log.
        context.log.error(f"recording alerts failed in run {run.run_id}: {context.failure_event.message}")
        return dg.SkipReason("an alert-recording run failed; not recording that failure in the warehouse")
    found = alerts.alerts_for_run(context.instance, run)
    for alert in found:
        context.log.error(f"ALERT {alert}")
    return dg.RunRequest(
        run_key=f"alerts-{run.run_id}",
        run_config={"ops": {"record_alerts": {"config": {"alerts": [
            {"run_id": a.run_id, "job_name": a.job_name, "asset_key": a.asset_key, "step_key": a.step_key,
             "check_name": a.check_name, "error": a.error, "failed_at": a.failed_at.isoformat()} for a in found
        ]}}}},
        tags={"attiva/alerts_for": run.run_id},
    )
