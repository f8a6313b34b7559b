"""The one entry point (`dagster dev` finds it through pyproject's [tool.dagster]).

Lineage: landing files -> ingest_landing (raw/*) -> dbt_staging (staging/*, identity nodes) -> matching/links
(probabilistic matching) -> dbt_warehouse (intermediate,
marts) -> customers gate -> dbt_audiences (audiences/*) -> audience gates -> syncs/* (one per
audience x destination, declared in the audiences' YAML); dbt_audiences also builds the
triggers (triggers/trg_*) -> messages/* (one per campaign, sent together by one step) ->
feedback/engagement_events (what recipients did, back into raw.email_engagement) ->
report/marketing_report (after every sync and send too).

Loading reads the dbt manifest and nothing else: no dbt parse, no warehouse, no
great_expectations import (each gate imports it when it runs).

Executor: in-process, for every job. DuckDB lets one process write a file at a time, and
almost every step here writes the warehouse (ingestion, dbt, gate baselines, alerts), so the
multiprocess executor would either fail with lock errors or serialize anyway, while paying
~2 s of process start per step (a dozen steps a run) and GX's ~5 s import in each gate's
process. dbt parallelizes inside its own step (profile threads). Across runs, dagster.yaml
allows one run at a time in the `warehouse` pool, which every warehouse step belongs to.
Scaling out (Postgres instance, Kubernetes or Celery executor) means a warehouse with
concurrent writers, or keeping warehouse steps in that pool with `granularity: op`.
"""

import dagster as dg

from orchestration.defs.checks import quality_gate_checks
from orchestration.defs.dbt import DBT_ASSETS, dbt_resource
from orchestration.defs.feedback import feedback_definitions
from orchestration.defs.fresh_events import event_messages
from orchestration.defs.ingest import ingest_landing
from orchestration.defs.matching import matching_links
from orchestration.defs.messages import message_definitions
from orchestration.defs.report import report_assets
from orchestration.defs.resources import Landing, Warehouse
from orchestration.defs.schedules import daily_full_refresh, daily_schedule
from orchestration.defs.sensors import (
    automation,
    fresh_events,
    landing_files,
    landing_refresh,
    record_run_alerts,
    run_failure_alerts,
)
from orchestration.defs.serving import serving_store
from orchestration.defs.syncs import Destinations, sync_assets

MESSAGE_ASSETS, (DUE_MESSAGES, DUE_MESSAGES_SCHEDULE) = message_definitions()
FEEDBACK_ASSET, FEEDBACK_JOB, FEEDBACK_SCHEDULE = feedback_definitions()

defs = dg.Definitions(
    assets=[ingest_landing, *DBT_ASSETS, matching_links, *sync_assets(), *MESSAGE_ASSETS, FEEDBACK_ASSET, serving_store,
            *report_assets()],
    asset_checks=quality_gate_checks(),
    jobs=[landing_refresh, daily_full_refresh, record_run_alerts, DUE_MESSAGES, FEEDBACK_JOB,
          event_messages],
    schedules=[daily_schedule, DUE_MESSAGES_SCHEDULE, FEEDBACK_SCHEDULE],
    sensors=[landing_files, fresh_events, run_failure_alerts, automation],
    resources={"warehouse": Warehouse(), "landing": Landing(), "dbt": dbt_resource(),
               "destinations": Destinations()},
    executor=dg.in_process_executor,
)
