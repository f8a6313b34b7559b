"""A test-only code location for the production suite: a schedule and a sensor whose runs take a
second, so the suite can watch the daemon launch and finish runs on the PostgreSQL instance
without building a warehouse.

The run records, as a run tag, which run storage its own process loaded: the run worker is a
process of its own (DefaultRunLauncher), and this shows it found the same Postgres instance.
"""

import dagster as dg

STORAGE_TAG = "attiva/run_storage"


@dg.op
def record_run_storage(context: dg.OpExecutionContext) -> None:
    storage = type(context.instance.run_storage).__name__
    context.instance.add_run_tags(context.run_id, {STORAGE_TAG: storage})
    context.log.info(f"run storage: {storage}")


# In-process, like the project's jobs: no step subprocess to start.
@dg.job(description="One op: record which run storage the run worker uses.", executor_def=dg.in_process_executor)
def heartbeat():
    record_run_storage()


# Stopped in code: the test starts it as if it had been running while the daemon was down, so
# the daemon's first pass catches up on the missed hourly tick (what a restarted daemon does).
hourly_heartbeat = dg.ScheduleDefinition(name="hourly_heartbeat", job=heartbeat, cron_schedule="0 * * * *",
                                         default_status=dg.DefaultScheduleStatus.STOPPED)


@dg.sensor(job=heartbeat, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def heartbeat_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest:
    # The same run key every tick: Dagster launches it once and skips it afterwards.
    return dg.RunRequest(run_key="heartbeat", tags={"attiva/probe": "sensor"})


defs = dg.Definitions(jobs=[heartbeat], schedules=[hourly_heartbeat], sensors=[heartbeat_sensor])
