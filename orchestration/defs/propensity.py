"""Churn, purchase and lead-conversion propensity, retrained every week on the warehouse's marts.

One asset, `predictions/customer_propensity`, downstream of the marts its features read. Its
run trains each model with a time split, records every training in
`predictions.propensity_models` and publishes the models that pass their gate
(activations/predict). The metadata carries each model's holdout AUC beside the rule's AUC on the
same holdout, its Brier score and its rows.

The check `models_published` fails when a model did not pass its gate (ERROR: the previous scores
stay and the failed-check sensor, sensors.py, leaves an alert in `activation.alerts`) or had too
little data to train (WARN: a warehouse with no leads is not broken). It does not block: the step
succeeds either way, so the audiences that read the scores in the same run still build, on the
last published ones.

Weekly, on its own job: not in the landing refresh nor the daily full refresh (schedules.py,
sensors.py), since a few days' data does not move a model trained on months, and training at
1M customers takes minutes.
"""

import dagster as dg
from pydantic import Field

from activations.predict.propensity import AUC_FLOOR  # numpy only: scikit-learn is imported when a model trains
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.clock import run_as_of

PROPENSITY_KEY = dg.AssetKey(["predictions", "customer_propensity"])
PUBLISHED = "models_published"
READS = [dg.AssetKey(["marts", name]) for name in ("customers", "orders", "events", "customer_identifiers")] + [
    dg.AssetKey(["staging", name]) for name in ("stg_email__engagement", "stg_consent__records")]
WEEKLY_CRON = "0 6 * * 1"  # Mondays, after the daily refresh (05:00) has built the marts


class PropensityConfig(dg.Config):
    auc_floor: float = Field(default=AUC_FLOOR, description="Lowest holdout AUC a model may have to be published "
                                                            "(it must not be below its rule's either).")


@dg.asset(key=PROPENSITY_KEY, deps=READS, group_name="predictions", kinds={"scikit-learn", "duckdb"},
          pool=WAREHOUSE_POOL,
          check_specs=[dg.AssetCheckSpec(PUBLISHED, asset=PROPENSITY_KEY, blocking=False,
                                         description="every propensity model passed its gate and was published")],
          description="Churn, purchase (30 days) and lead-conversion probabilities per customer, from gradient "
                      "boosting trained with a time split (activations/predict, docs/propensity.md).")
def customer_propensity(context: dg.AssetExecutionContext, warehouse: Warehouse,
                        config: PropensityConfig) -> dg.MaterializeResult:
    """Retrain every propensity model, record each training, publish the ones that pass."""
    from activations.predict.propensity_tables import SCORES, retrain  # scikit-learn: at run time, not at load

    with warehouse.connect() as con:
        runs = retrain(con, now=run_as_of(context), auc_floor=config.auc_floor)
        rows = con.execute(f"select count(*) from {SCORES}").fetchone()[0]
    metadata: dict = {"rows": dg.MetadataValue.int(rows)}
    for run in runs:
        context.log.info(str(run))
        metadata.update({f"{run.target.name}_published": run.published, f"{run.target.name}_reason": run.reason})
        if run.auc is not None:
            metadata.update({f"{run.target.name}_kind": run.model, f"{run.target.name}_auc": round(run.auc, 4),
                             f"{run.target.name}_rule_auc": round(run.rule_auc or float("nan"), 4),
                             f"{run.target.name}_brier": round(run.brier, 4),
                             f"{run.target.name}_holdout_rows": run.holdout_rows})
    failed = [r for r in runs if not r.published and r.auc is not None]
    untrained = [r for r in runs if r.auc is None]
    check = dg.AssetCheckResult(
        check_name=PUBLISHED, passed=not failed and not untrained,
        severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
        description="; ".join(str(r) for r in [*failed, *untrained]) or "every model published",
        metadata={r.target.name: r.reason for r in runs})
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


weekly_propensity = dg.define_asset_job(
    "weekly_propensity", selection=dg.AssetSelection.assets(PROPENSITY_KEY),
    description="Retrain the propensity models and publish those that pass their gate.",
    tags={"attiva/trigger": "schedule"})

weekly_propensity_schedule = dg.ScheduleDefinition(
    name="weekly_propensity_schedule", job=weekly_propensity, cron_schedule=WEEKLY_CRON,
    execution_timezone="Europe/Rome", default_status=dg.DefaultScheduleStatus.RUNNING)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[customer_propensity], jobs=[weekly_propensity], schedules=[weekly_propensity_schedule])
