"""The one entry point (`dagster dev` finds it through pyproject's [tool.dagster]).

Lineage: landing files -> ingest_landing (raw/*) -> dbt_staging (staging/*, identity nodes) -> matching/links
(probabilistic matching) and listening/* (web listening's scores) -> dbt_warehouse (intermediate,
marts) -> customers gate -> dbt_audiences (audiences/*) -> audience gates -> syncs/* (one per
audience x destination, declared in the audiences' YAML); dbt_audiences also builds the
triggers (triggers/trg_*) -> messages/* (one per campaign, sent together by one step) ->
feedback/engagement_events (what recipients did, back into raw.email_engagement) ->
report/marketing_report (after every sync and send too). marts/orders -> predictions/customer_clv
(customer lifetime value) and the marts feed predictions/customer_propensity (churn, purchase and
lead-conversion models), each retrained weekly by its own schedule.

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

from orchestration.defs import (
    checks,
    clv,
    dbt,
    feedback,
    fresh_events,
    ingest,
    listening,
    matching,
    messages,
    propensity,
    report,
    resources,
    schedules,
    sensors,
    serving,
    syncs,
)

# Each module declares what it owns (assets, checks, jobs, schedules, sensors, resources); this file only
# merges them and sets what holds for all of them.
MODULES = (resources, ingest, dbt, matching, listening, checks, syncs, messages, feedback, fresh_events, serving, report, clv,
           propensity, schedules, sensors)

defs = dg.Definitions.merge(
    *(module.definitions() for module in MODULES),
    dg.Definitions(executor=dg.in_process_executor),
)
