"""Customer lifetime value on a warehouse: CDNOW's transaction log as `marts.orders`, trained as of the end
of week 39 (FHL's calibration period), published to predictions.customer_clv; a model that fails its check,
or too little data, leaves the published table as it was and says why in predictions.clv_models."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import numpy as np
import pytest

from activations.predict import clv_warehouse
from tests.predict.conftest import AS_OF


def test_the_summary_is_the_papers(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        customers = clv_warehouse.read_customers(con, AS_OF)
    s = customers.summary
    first = customers.ids.to_pylist().index("00004")  # CDNOW's first customer: x 2, t_x 30.43, zbar 22.35
    assert (s.frequency[first], round(s.recency[first], 2)) == (2, 30.43) and s.monetary[first] == pytest.approx(22.345)
    assert len(s.frequency) == 2357 and s.repeat_buyers == 946


def test_a_model_that_passes_is_published(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        result = clv_warehouse.train_and_publish(con, AS_OF)
        assert result.published, str(result)
        assert result.holdout_error < 0.05  # 692 predicted, 704 purchase days in the 90 days before as_of
        # The warehouse's own summary (T to the day) lands within 1% of the paper's r and alpha.
        assert result.purchases.r == pytest.approx(0.243, rel=0.01) and result.spend.q == pytest.approx(3.74, rel=0.01)
        rows = con.execute(f"select count(*), count(distinct model_version), min(probability_alive), "
                           f"max(probability_alive), sum(expected_purchases_90d), min(expected_value_365d) "
                           f"from {clv_warehouse.SCORES}").fetchall()[0]
        count, versions, least_alive, most_alive, purchases_90d, least_value = rows
        assert (count, versions) == (2357, 1) and 0 < least_alive <= most_alive <= 1
        assert 500 < purchases_90d < 900 and least_value > 0
        assert clv_warehouse.published_model(con)["model_version"] == result.model_version


def test_a_model_that_fails_its_check_leaves_the_previous_one(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        first = clv_warehouse.train_and_publish(con, AS_OF, now=datetime(2026, 1, 1, tzinfo=UTC))
        refused = clv_warehouse.train_and_publish(con, AS_OF, tolerance=0.001, now=datetime(2026, 1, 8, tzinfo=UTC))
        assert refused.status == "refused" and "holdout" in refused.reason
        assert con.execute(f"select distinct model_version from {clv_warehouse.SCORES}").fetchall() == [
            (first.model_version,)]
        history = con.execute(f"select status, published, reason is null from {clv_warehouse.MODELS} "
                              f"order by trained_at").fetchall()
        assert history == [("published", True, True), ("refused", False, False)]


def test_too_little_data_says_so_and_publishes_nothing(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        result = clv_warehouse.train_and_publish(con, AS_OF, min_repeat_buyers=5000)
        assert result.status == "too_little_data" and "too little data" in str(result)
        assert con.execute(f"select count(*) from {clv_warehouse.SCORES}").fetchone() == (0,)  # there, empty
        assert con.execute(f"select status, reason from {clv_warehouse.MODELS}").fetchall() == [
            ("too_little_data", result.reason)]


def test_scores_that_are_not_numbers_are_not_published(warehouse, monkeypatch):
    monkeypatch.setattr(clv_warehouse.clv, "expected_value", lambda *args, **kwargs: np.full(2357, np.nan))
    with duckdb.connect(str(warehouse)) as con:
        result = clv_warehouse.train_and_publish(con, AS_OF)
        assert result.status == "refused" and result.reason == "scores not finite for 2,357 customers"
        assert con.execute(f"select count(*) from {clv_warehouse.SCORES}").fetchone() == (0,)
