"""A predictive model refused by its quality gate stops only itself: in a run that also builds the audience
reading its scores, its check fails with severity ERROR, the audience builds on the previous scores, the run
succeeds, and `failed_check_alerts` has the alert recorded in activation.alerts. A successful run whose
checks failed at most with a warning leaves no alert."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import HANDCRAFTED_AS_OF
from tests.measurement.conftest import copy_warehouse
from tests.predict.test_prediction_sources import CLV_VERSION, publish_scores

# Beside the other users of the handcrafted warehouse: one build of it per xdist worker.
pytestmark = pytest.mark.xdist_group("handcrafted")

AUDIENCE = "aud_valuable_at_risk"


def success_context(sensor, instance, result):
    import dagster as dg

    return dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance,
                                              dagster_run=result.dagster_run,
                                              dagster_event=result.get_run_success_event())


def test_a_refused_model_holds_back_no_audience_and_leaves_an_alert(dbt_manifest, handcrafted_warehouse: Path,
                                                                     tmp_path: Path):
    import dagster as dg

    from orchestration.defs.clv import CLV_KEY, QUALITY, customer_clv
    from orchestration.defs.dbt import dbt_audiences, dbt_resource
    from orchestration.defs.resources import Warehouse
    from orchestration.defs.sensors import failed_check_alerts, record_run_alerts
    from orchestration.lib.clock import AS_OF_TAG

    audience = dg.AssetKey(["audiences", AUDIENCE])
    assert CLV_KEY in dbt_audiences.asset_deps[audience], "the audience reads the scores: it is downstream"
    warehouse = copy_warehouse(handcrafted_warehouse, tmp_path)
    ids = publish_scores(warehouse)  # what the last published models left
    instance = dg.DagsterInstance.ephemeral()
    # One repeat buyer in the handcrafted orders: allowed to train, BG/NBD does not converge and is refused.
    result = dg.materialize(
        [customer_clv, dbt_audiences], selection=dg.AssetSelection.assets(CLV_KEY, audience), instance=instance,
        resources={"warehouse": Warehouse(path=str(warehouse)), "dbt": dbt_resource()},
        run_config={"ops": {"predictions__customer_clv": {"config": {"min_repeat_buyers": 1}}}},
        tags={AS_OF_TAG: HANDCRAFTED_AS_OF.isoformat()}, raise_on_error=False)

    assert result.success and not result.get_step_failure_events()
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == QUALITY]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert {CLV_KEY, audience} <= {e.asset_key for e in result.get_asset_materialization_events()}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        versions = con.execute("select distinct model_version from predictions.customer_clv").fetchall()
        members = [c for (c,) in con.execute(f"select customer_id from audiences.{AUDIENCE}").fetchall()]
    assert versions == [(CLV_VERSION,)], "the refused model published nothing"
    assert members == [ids["mario"]], "the audience was built on the previous scores"

    request = failed_check_alerts(success_context(failed_check_alerts, instance, result))
    assert request.run_key == f"alerts-{result.run_id}"
    [alert] = request.run_config["ops"]["record_alerts"]["config"]["alerts"]
    assert (alert["asset_key"], alert["check_name"]) == ("predictions/customer_clv", QUALITY)
    assert alert["error"] == check.description and "holdout" in alert["error"]
    record_run_alerts.execute_in_process(run_config=request.run_config,
                                         resources={"warehouse": Warehouse(path=str(warehouse))})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        recorded = con.execute("select run_id, asset_key, step_key, check_name, error from activation.alerts").fetchall()
    assert recorded == [(result.run_id, "predictions/customer_clv", "predictions__customer_clv", QUALITY,
                         check.description)]


def test_a_successful_run_with_only_warnings_leaves_no_alert(dbt_manifest, tmp_path: Path):
    import dagster as dg

    from orchestration.defs.resources import Warehouse
    from orchestration.defs.sensors import failed_check_alerts, record_run_alerts

    @dg.asset(check_specs=[dg.AssetCheckSpec("enough_data", asset="scores")])
    def scores():
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name="enough_data", passed=False, severity=dg.AssetCheckSeverity.WARN, description="a new shop")])

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([scores], instance=instance)
    skipped = failed_check_alerts(success_context(failed_check_alerts, instance, result))
    assert isinstance(skipped, dg.SkipReason) and "no check failed with severity ERROR" in skipped.skip_message

    # Nor does recording alerts ask for another alert run.
    recorded = record_run_alerts.execute_in_process(
        run_config={"ops": {"record_alerts": {"config": {"alerts": []}}}}, instance=instance,
        resources={"warehouse": Warehouse(path=str(tmp_path / "warehouse.duckdb"))})
    assert isinstance(failed_check_alerts(success_context(failed_check_alerts, instance, recorded)), dg.SkipReason)
