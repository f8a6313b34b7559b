"""Audiences read the scores the weekly models publish: the dbt project creates the score tables with the
Python's own DDL (so a new warehouse builds), and aud_valuable_at_risk picks the predicted churners worth
keeping once both models have published."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from activations.build import dbt_command, run_dbt
from activations.predict import clv_warehouse, propensity_tables
from tests.conftest import HANDCRAFTED_AS_OF
from tests.dbt.test_handcrafted import customer_of
from tests.ddl import columns, declared
from tests.measurement.conftest import copy_warehouse

pytestmark = pytest.mark.xdist_group("handcrafted")


def test_the_macro_ddl_is_the_models_ddl():
    python = {"customer_clv": clv_warehouse.SCORE_COLUMNS, "customer_propensity": propensity_tables.score_columns()}
    assert declared("predictions.sql", "prediction_tables") == {name: columns(ddl) for name, ddl in python.items()}


def test_a_new_warehouse_has_empty_score_tables_and_an_empty_audience(handcrafted_warehouse: Path):
    """The handcrafted build ran before any model: the tables exist, empty, and the audience built."""
    with duckdb.connect(str(handcrafted_warehouse), read_only=True) as con:
        counts = [con.execute(f"select count(*) from {t}").fetchone()[0] for t in (
            "predictions.customer_clv", "predictions.customer_propensity", "audiences.aud_valuable_at_risk")]
    assert counts == [0, 0, 0]


# mario: valuable and likely to churn; anna: likely to churn, low value; laura: valuable, staying;
# paola, franco, giulia: the rest of the scored buyers (the value cut is the top quarter of them)
SCORES = {"mario": (0.8, 900.0), "anna": (0.9, 20.0), "laura": (0.2, 800.0),
          "paola": (0.6, 50.0), "franco": (0.7, 40.0), "giulia": (0.1, 30.0)}
CLV_VERSION = "clv-test"


def publish_scores(path: Path) -> dict[str, str]:
    """SCORES (churn probability, expected value) as the published models' tables; person name -> customer id.
    On the default value cut, mario alone makes aud_valuable_at_risk."""
    ids = customer_of(path)
    scored = datetime(2026, 11, 30)
    with duckdb.connect(str(path)) as con:
        for person, (churn, value) in SCORES.items():
            con.execute("insert into predictions.customer_propensity (customer_id, churn_probability, churn_model, "
                        "scored_at) values (?, ?, 'churn-test', ?)", [ids[person], churn, scored])
            con.execute("insert into predictions.customer_clv (customer_id, probability_alive, expected_value_365d, "
                        "model_version, trained_at) values (?, 0.5, ?, ?, ?)", [ids[person], value, CLV_VERSION, scored])
    return ids


def test_predicted_churners_with_a_high_predicted_value_make_the_audience(handcrafted_warehouse: Path,
                                                                           tmp_path: Path):
    path = copy_warehouse(handcrafted_warehouse, tmp_path)
    ids = publish_scores(path)
    result = run_dbt(dbt_command("build", HANDCRAFTED_AS_OF, select="aud_valuable_at_risk"), warehouse=path)
    assert result.ok, str(result)
    with duckdb.connect(str(path), read_only=True) as con:
        members = dict(con.execute("select customer_id, expected_value_365d from audiences.aud_valuable_at_risk")
                       .fetchall())
    names = {v: k for k, v in ids.items()}
    assert {names[c]: v for c, v in members.items()} == {"mario": 900.0}

    # A marketer widening the value cut to the top half brings in paola too (churn 0.6, value 3rd of 6).
    result = run_dbt(dbt_command("build", HANDCRAFTED_AS_OF, select="aud_valuable_at_risk",
                                 extra_vars={"predicted_value_top_share": 0.5}), warehouse=path)
    assert result.ok, str(result)
    with duckdb.connect(str(path), read_only=True) as con:
        members = {names[c] for (c,) in con.execute("select customer_id from audiences.aud_valuable_at_risk").fetchall()}
    assert members == {"mario", "paola"}


def test_the_personalization_api_serves_the_predicted_traits(handcrafted_warehouse: Path, tmp_path: Path):
    """A snapshot carries each customer's published scores; a customer no model scored reads null."""
    from activations.serve.store import ServingStore, build_serving_store

    path = copy_warehouse(handcrafted_warehouse, tmp_path)
    ids = customer_of(path)
    with duckdb.connect(str(path)) as con:
        con.execute("insert into predictions.customer_propensity (customer_id, churn_probability, "
                    "purchase_probability_30d, scored_at) values (?, 0.75, 0.125, now())", [ids["mario"]])
        con.execute("insert into predictions.customer_clv (customer_id, probability_alive, expected_value_365d, "
                    "trained_at) values (?, 0.9, 321.5, now())", [ids["mario"]])
    build_serving_store(path, tmp_path / "serving")
    snapshot = ServingStore(tmp_path / "serving").snapshot()
    try:
        mario, anna = (snapshot.profile(ids[p])["traits"] for p in ("mario", "anna"))
    finally:
        snapshot.close()
    assert (mario["churn_probability"], mario["purchase_probability_30d"], mario["expected_value_365d"],
            mario["probability_alive"], mario["lead_conversion_probability"]) == (0.75, 0.125, 321.5, 0.9, None)
    assert anna["churn_probability"] is None and anna["expected_value_365d"] is None
