"""Sensors: new landing files start a refresh; new event files start the event path at once; a
failed run, or a run that succeeded with a failed check of severity ERROR (a predictive model
refused by its quality gate), leaves an alert in the warehouse."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from activations.ingest.contract import SOURCES
from orchestration.defs.fresh_events import event_messages
from orchestration.defs.ingest import ingest_landing
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse
from orchestration.defs.schedules import PREDICTIONS_GROUP
from orchestration.lib import alerts, event_watch, landing_watch

# Files that a faster path loads itself start a refresh of the whole graph at most this long after
# the last one: event files (the event path, fresh_events below, has loaded them and sent what they
# trigger) and email engagement (feedback/engagement_events loads it after every send and every 15
# minutes). The customer 360 and the audiences follow in that refresh. Any other landing file still
# starts one at once.
EVENTS_CATCH_UP_MINUTES = 15
ENGAGEMENT_FOLDER = next(s.folder for s in SOURCES if s.name == "email_engagement")


def _loaded_on_its_own(name: str) -> bool:
    return event_watch.is_event_file(name) or name.startswith(f"{ENGAGEMENT_FOLDER}/")

# Ingestion, everything downstream of it (dbt, the gates, later the syncs), and what those
# read besides the raw tables (dbt seeds): a first run on an empty warehouse must build them too.
# Not the predictive models: they retrain weekly on their own (clv.py, propensity.py), and the audiences
# that read their scores read the last published ones.
landing_refresh = dg.define_asset_job(
    "landing_refresh",
    selection=dg.AssetSelection.assets(ingest_landing).downstream().upstream()
    - dg.AssetSelection.groups(PREDICTIONS_GROUP),
    description="Load new landing files, rebuild what depends on them, run the gates.",
    tags={"attiva/trigger": "landing"},
)


def _landing_cursor(cursor: str | None) -> tuple[str | None, float | None]:
    """(landing_watch's cursor, when the sensor last started a refresh); older cursors held only the former."""
    if not cursor:
        return None, None
    data = json.loads(cursor)
    if isinstance(data.get("files"), dict):
        return json.dumps(data["files"]), data.get("refreshed_at")
    return cursor, None


def _hold_back(new_cursor: str, old_cursor: str | None, names: list[str]) -> str:
    """`new_cursor` with `names` as the old cursor had them: still new at the next tick."""
    new, old = json.loads(new_cursor), json.loads(old_cursor) if old_cursor else {}
    for name in names:
        if name in old:
            new[name] = old[name]
        else:
            new.pop(name, None)
    return json.dumps(new, sort_keys=True, separators=(",", ":"))


@dg.sensor(job=landing_refresh, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="One run per set of new or changed landing files (by name, size and mtime); "
                       f"event and engagement files alone at most {EVENTS_CATCH_UP_MINUTES} minutes after the last.")
def landing_files(context: dg.SensorEvaluationContext, landing: Landing,
                  warehouse: Warehouse) -> dg.SensorResult | dg.SkipReason:
    folder = landing.folder()
    if not folder.is_dir():
        return dg.SkipReason(f"the landing folder {folder} does not exist")
    now = datetime.now(UTC)
    files_cursor, refreshed_at = _landing_cursor(context.cursor)
    changes = landing_watch.look(folder, files_cursor, now=now)
    loaded_before = landing_watch.already_loaded(warehouse.file(), changes.changed, changes.cursor)
    if loaded_before:  # new to this sensor, not to the warehouse (`make dev` after `make demo`)
        changes = replace(changes, changed=[n for n in changes.changed if n not in loaded_before])
    settling = f"; {len(changes.settling)} still being written" if changes.settling else ""

    def cursor(files: str, at: float | None) -> str:
        return json.dumps({"files": json.loads(files), "refreshed_at": at}, separators=(",", ":"))

    if not changes.changed:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"nothing new in {folder}{settling}"),
                               cursor=cursor(changes.cursor, refreshed_at))
    loaded = [n for n in changes.changed if _loaded_on_its_own(n)]
    next_catch_up = (datetime.fromtimestamp(refreshed_at, UTC) + timedelta(minutes=EVENTS_CATCH_UP_MINUTES)
                     if refreshed_at is not None else now)
    if len(loaded) == len(changes.changed) and now < next_catch_up:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{len(loaded)} new event or engagement file(s): the event path sends what they "
                                      "trigger now, the engagement feedback loads engagement; the rest of the "
                                      f"warehouse follows at {next_catch_up:%H:%M} UTC{settling}"),
            cursor=cursor(_hold_back(changes.cursor, files_cursor, loaded), refreshed_at))
    context.log.info(f"{len(changes.changed)} new or changed landing file(s): {', '.join(changes.changed[:10])}{settling}")
    request = dg.RunRequest(run_key=changes.run_key(), tags={"attiva/landing_files": str(len(changes.changed))})
    return dg.SensorResult(run_requests=[request], cursor=cursor(changes.cursor, now.timestamp()))


@dg.sensor(job=event_messages, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New event files: load them, run the event-driven triggers, send what is due (seconds).")
def fresh_events(context: dg.SensorEvaluationContext, landing: Landing) -> dg.SensorResult | dg.SkipReason:
    folder = landing.folder()
    if not folder.is_dir():
        return dg.SkipReason(f"the landing folder {folder} does not exist")
    changes = event_watch.look(folder, context.cursor, now=datetime.now(UTC))
    settling = f"; {len(changes.settling)} still being written" if changes.settling else ""
    if not changes.changed:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no new event files in {folder}{settling}"),
                               cursor=changes.cursor)
    # A run still waiting in the queue will load these files too when it starts: no second run for
    # them. The cursor stays put, so they count as new again once that run has started.
    waiting = context.instance.get_run_records(
        dg.RunsFilter(job_name=event_messages.name,
                      statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]), limit=1)
    if waiting:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"{len(changes.changed)} new event file(s); run {waiting[0].dagster_run.run_id} is waiting to start "
            "and will load them"), cursor=context.cursor)
    request = dg.RunRequest(run_key=f"events-{changes.run_key().removeprefix('landing-')}",
                            tags={"attiva/event_files": str(len(changes.changed))})
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
@dg.job(description="Record the alerts of a run in activation.alerts (requested by run_failure_alerts and "
                    "failed_check_alerts).")
def record_run_alerts():
    record_alerts()


def _record_request(context: dg.RunStatusSensorContext, found: list[alerts.Alert]) -> dg.RunRequest:
    """Log the alerts and request the run that records them (one per run, whatever sensor saw it)."""
    run = context.dagster_run
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


@dg.run_failure_sensor(request_job=record_run_alerts, minimum_interval_seconds=30,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Log and record in activation.alerts what failed in a failed run.")
def run_failure_alerts(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    if run.job_name == record_run_alerts.name:
        # Requesting another alert run could loop; the failure is in the Dagster UI and this log.
        context.log.error(f"recording alerts failed in run {run.run_id}: {context.failure_event.message}")
        return dg.SkipReason("an alert-recording run failed; not recording that failure in the warehouse")
    return _record_request(context, alerts.alerts_for_run(context.instance, run))


# A check that fails with severity ERROR without blocking (a predictive model refused by its gate,
# matching that did not run) lets its step and the run succeed, so that what is downstream still
# runs: the alert comes from the run's success instead of its failure.
@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=record_run_alerts,
                      minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Log and record in activation.alerts the checks that failed with severity ERROR "
                                  "in a run that succeeded (a refused predictive model).")
def failed_check_alerts(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    if run.job_name == record_run_alerts.name:
        return dg.SkipReason("an alert-recording run checks nothing")
    found = alerts.alerts_for_run(context.instance, run)
    if not found:
        return dg.SkipReason(f"run {run.run_id} of {run.job_name}: no check failed with severity ERROR")
    return _record_request(context, found)


def definitions() -> dg.Definitions:
    """The landing and event sensors, alerts on failed runs and failed checks, and declarative automation."""
    return dg.Definitions(jobs=[landing_refresh, record_run_alerts],
                          sensors=[landing_files, fresh_events, run_failure_alerts, failed_check_alerts, automation])
