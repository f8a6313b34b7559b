"""The `predictions/customer_clv` asset: a model that passes is published with its parameters and holdout
error as metadata; one that fails its check is not published, the check fails with severity ERROR (an
alert) without blocking, so the run stays green; too little data is a warning. That a refused model holds
back nothing downstream, and leaves an alert, is tests/orchestration/test_refused_model.py."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from activations.predict import clv_warehouse
from orchestration.defs.clv import CLV_KEY, QUALITY, customer_clv
from orchestration.defs.resources import Warehouse
from tests.predict.conftest import AS_OF


@pytest.fixture(autouse=True)
def as_of(monkeypatch):
    monkeypatch.setenv("ATTIVA_AS_OF", AS_OF.isoformat())


def train(path, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize([customer_clv], resources={"warehouse": Warehouse(path=str(path))},
                          run_config={"ops": {"predictions__customer_clv": {"config": config}}} if config else None,
                          raise_on_error=False)


def check_of(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == QUALITY
    return evaluation


def test_a_passing_model_is_published_with_its_quality_as_metadata(warehouse):
    result = train(warehouse)
    assert result.success and check_of(result).passed
    [materialization] = result.asset_materializations_for_node("predictions__customer_clv")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["published"] is True and meta["dagster/row_count"] == 2357
    assert meta["r"] == pytest.approx(0.242, rel=0.01) and meta["holdout_error"] < 0.05 and meta["log_likelihood"] < 0


def test_a_model_failing_its_check_is_not_published_and_the_run_goes_on(warehouse):
    assert train(warehouse).success
    with duckdb.connect(str(warehouse)) as con:
        before = clv_warehouse.published_model(con)["model_version"]
    result = train(warehouse, tolerance=0.001)
    # The check does not block: the step succeeds and the failed ERROR check is the alert.
    assert result.success and not result.get_step_failure_events()
    [spec] = list(customer_clv.check_specs)
    assert not spec.blocking
    evaluation = check_of(result)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "holdout" in evaluation.description
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute(f"select distinct model_version from {clv_warehouse.SCORES}").fetchall() == [(before,)]


def test_too_little_data_warns_without_failing(warehouse):
    result = train(warehouse, min_repeat_buyers=5000)
    evaluation = check_of(result)
    assert result.success and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "too little data" in evaluation.description
    assert CLV_KEY.to_user_string() == "predictions/customer_clv"
