"""The daily full refresh: ingest, rebuild every dbt model from the raw tables (incremental
models included), run every gate, and (once they exist) every sync, before the working day.
Predictive models are left out: they retrain on their own schedules (clv.py: weekly)."""

import dagster as dg

from orchestration.defs.dbt import DBT_OPS

DAILY_CRON = "0 5 * * *"
TIMEZONE = "Europe/Rome"
PREDICTIONS_GROUP = "predictions"

daily_full_refresh = dg.define_asset_job(
    "daily_full_refresh",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(PREDICTIONS_GROUP),
    config={"ops": {op: {"config": {"full_refresh": True}} for op in DBT_OPS}},
    description="Everything but the predictive models, with dbt --full-refresh.",
    tags={"attiva/trigger": "schedule"},
)

daily_schedule = dg.ScheduleDefinition(
    name="daily_full_refresh_schedule",
    job=daily_full_refresh,
    cron_schedule=DAILY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[daily_full_refresh], schedules=[daily_schedule])
