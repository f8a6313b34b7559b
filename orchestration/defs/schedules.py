"""The daily full refresh: ingest, rebuild every dbt model from the raw tables (incremental
models included), run every gate, and (once they exist) every sync, before the working day.
The propensity models are left to their weekly schedule (propensity.py)."""

import dagster as dg

from orchestration.defs.dbt import DBT_OPS
from orchestration.defs.propensity import PROPENSITY_KEY

DAILY_CRON = "0 5 * * *"
TIMEZONE = "Europe/Rome"

daily_full_refresh = dg.define_asset_job(
    "daily_full_refresh",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(PROPENSITY_KEY),
    config={"ops": {op: {"config": {"full_refresh": True}} for op in DBT_OPS}},
    description="Everything but the weekly propensity models, with dbt --full-refresh.",
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
