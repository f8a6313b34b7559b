"""Customer lifetime value as an asset, `predictions/customer_clv`, retrained every week from the
marts' orders (activations/predict/clv_warehouse.py), not in the daily refresh: purchase habits
move over weeks, and at 1M customers a training costs about a minute.

A model that fails its check `clv_quality` (did not converge, impossible parameters, holdout
repeat purchases off by more than the tolerance) is not published and the previous table stays.
The check fails with severity ERROR but does not block: the step succeeds, so whatever reads the
scores in the same run (aud_valuable_at_risk) still builds, on the previous ones, and the
failed-check sensor (sensors.py) records the alert. Too little data is a warning, not an alert: a
new shop has no repeat buyers yet.
scipy is imported when the step runs, not when definitions load.
"""

import dagster as dg
from pydantic import Field

from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.defs.schedules import PREDICTIONS_GROUP, TIMEZONE
from orchestration.lib.clock import run_as_of

CLV_KEY = dg.AssetKey(["predictions", "customer_clv"])
ORDERS_KEY = dg.AssetKey(["marts", "orders"])
QUALITY = "clv_quality"
WEEKLY_CRON = "0 4 * * 1"  # Monday 04:00, before the daily refresh at 05:00


class ClvConfig(dg.Config):
    holdout_days: int = Field(default=90, description="Days before as_of held out to check the model's predictions.")
    tolerance: float = Field(default=0.25, description="Largest relative error of the holdout repeat purchases.")
    min_repeat_buyers: int = Field(default=100, description="Fewer repeat buyers than this: too little data to train.")


@dg.asset(
    key=CLV_KEY, deps=[ORDERS_KEY], group_name=PREDICTIONS_GROUP, kinds={"python", "duckdb"}, pool=WAREHOUSE_POOL,
    check_specs=[dg.AssetCheckSpec(QUALITY, asset=CLV_KEY, blocking=False,
                                   description="The model converged, its parameters are plausible and it predicted "
                                               "the holdout period's repeat purchases within the tolerance.")],
    description="Per customer: probability still a customer, expected purchases in 90 days, expected value over "
                "365 days (BG/NBD + Gamma-Gamma, docs/predictive-traits.md). Replaced only by a model that passes "
                "clv_quality; every training is logged in predictions.clv_models.",
)
def customer_clv(context: dg.AssetExecutionContext, warehouse: Warehouse, config: ClvConfig) -> dg.MaterializeResult:
    """Train on the orders up to the run's as_of and publish the scores if the model passes its check."""
    from activations.predict.clv_warehouse import train_and_publish  # scipy: imported when the step runs

    with warehouse.connect() as con:
        result = train_and_publish(con, run_as_of(context), holdout_days=config.holdout_days,
                                   tolerance=config.tolerance, min_repeat_buyers=config.min_repeat_buyers)
    context.log.info(str(result))
    metadata = {"status": result.status, "published": result.published, "model_version": result.model_version,
                "seconds": round(result.seconds, 2)}
    if result.reason:
        metadata["reason"] = result.reason
    if result.purchases is not None:
        p, s = result.purchases, result.spend
        metadata |= {"customers": result.customers, "repeat_buyers": result.repeat_buyers,
                     "r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b, "log_likelihood": p.log_likelihood,
                     "p": s.p, "q": s.q, "v": s.v, "spend_log_likelihood": s.log_likelihood,
                     "holdout_predicted": round(result.holdout_predicted, 1), "holdout_actual": result.holdout_actual,
                     "holdout_error": round(result.holdout_error, 4) if result.holdout_error != float("inf") else None}
    if result.published:
        metadata["dagster/row_count"] = result.customers
    metadata = {k: v for k, v in metadata.items() if v is not None}
    severity = dg.AssetCheckSeverity.WARN if result.status == "too_little_data" else dg.AssetCheckSeverity.ERROR
    check = dg.AssetCheckResult(check_name=QUALITY, passed=result.published, severity=severity,
                                description=result.reason or None,
                                metadata={k: v for k, v in metadata.items() if k in ("status", "reason", "holdout_error")})
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


weekly_clv = dg.define_asset_job("weekly_clv", selection=dg.AssetSelection.assets(CLV_KEY),
                                 description="Retrain customer lifetime value.", tags={"attiva/trigger": "schedule"})
weekly_clv_schedule = dg.ScheduleDefinition(name="weekly_clv_schedule", job=weekly_clv, cron_schedule=WEEKLY_CRON,
                                            execution_timezone=TIMEZONE,
                                            default_status=dg.DefaultScheduleStatus.RUNNING)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[customer_clv], jobs=[weekly_clv], schedules=[weekly_clv_schedule])
