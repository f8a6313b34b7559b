"""Measurement and the marketer's report.

Lineage: activation/message_ledger, activation/sync_runs (the engine's tables, dbt sources of
the measurement models) -> measurement/* (dbt views, built by the dbt_warehouse step) ->
report/marketing_report, which also waits for every message asset of the run and for
feedback/engagement_events (the engagement those messages caused, loaded after the sends).
Not for the syncs: a sync its audience's quality gate held back, or one a guard refused, would
hold back the whole report (Dagster runs nothing downstream of a failed step); the report's sync
health reads the sync run log as it stands, each row dated.

Why views, and why the report waits for the sends: the measurement models are built in the
first dbt step, before messages and syncs go out, but as views they hold no rows of their own;
the report reads them after the run's sends, so it shows this run's messages and sync runs.
The two `activation/*` assets stand for the engine's tables: they make sure the tables exist
(so the views can be created on a new warehouse) and record their size; the rows themselves
are written by the message and sync steps. Declaring those steps as their producers instead
would put the measurement views downstream of the sends inside the same dbt step as the marts
upstream of them, a cycle between steps.
"""


import dagster as dg

from activations.engine.state import ensure_state
from activations.messaging.ledger import ensure_ledger
from activations.report import default_report_path, write_report
from orchestration.defs.dbt import dbt_warehouse
from orchestration.defs.feedback import FEEDBACK_KEY
from orchestration.defs.messages import declared_triggers, message_key
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.clock import run_as_of

LEDGER_KEY = dg.AssetKey(["activation", "message_ledger"])
SYNC_RUNS_KEY = dg.AssetKey(["activation", "sync_runs"])
REPORT_KEY = dg.AssetKey(["report", "marketing_report"])


def measurement_keys() -> list[dg.AssetKey]:
    """The measurement models' asset keys (dbt models under models/measurement)."""
    return sorted((k for k in dbt_warehouse.keys if k.path[0] == "measurement"), key=lambda k: k.to_user_string())


def sends_keys() -> list[dg.AssetKey]:
    """Every message asset: the report runs after them, so it shows this run's messages."""
    return [message_key(t) for t in declared_triggers()]


@dg.multi_asset(
    specs=[dg.AssetSpec(LEDGER_KEY, group_name="activation", kinds={"duckdb"},
                        description="The message ledger, written by the messaging step (activations/messaging)."),
           dg.AssetSpec(SYNC_RUNS_KEY, group_name="activation", kinds={"duckdb"},
                        description="The sync run log, written by every sync (activations/engine).")],
    name="activation_tables", pool=WAREHOUSE_POOL, can_subset=True,
)
def activation_tables(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Create the engine's tables if missing and record how many rows they hold."""
    with warehouse.connect() as con:
        ensure_ledger(con)
        ensure_state(con)
        for key in context.selected_asset_keys:
            rows = con.execute(f"select count(*) from activation.{key.path[-1]}").fetchone()[0]
            yield dg.MaterializeResult(asset_key=key, metadata={"rows": dg.MetadataValue.int(rows)})


def report_assets() -> list[dg.AssetsDefinition]:
    """The activation tables' assets and the report asset, downstream of measurement and of every send."""

    @dg.asset(key=REPORT_KEY, deps=[*measurement_keys(), *sends_keys(), FEEDBACK_KEY], group_name="report",
              kinds={"html"},
              pool=WAREHOUSE_POOL, automation_condition=dg.AutomationCondition.eager())
    def marketing_report(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """The marketer's HTML report: campaigns, uplift against the holdout, audiences, funnel, sync health."""
        # Beside the warehouse it describes (data/report/ by default, as `attiva report`).
        with warehouse.connect() as con:
            # keep_measurement: the campaign measurement it reads is kept for the console's pages.
            path = write_report(con, warehouse.file().parent / "report" / default_report_path().name,
                                as_of=run_as_of(context), keep_measurement=True)
        context.log.info(f"report written to {path}")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                              "bytes": dg.MetadataValue.int(path.stat().st_size)})

    return [activation_tables, marketing_report]


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=report_assets())
