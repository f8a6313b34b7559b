"""The same dbt project on Apache Spark: the handcrafted people built on local Spark agree with the
DuckDB build row for row, model by model, and pass the DuckDB tests' own expectations for
identity, audiences and triggers (tests/dbt)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import duckdb
import pytest

from tests.dbt.test_handcrafted import AUDIENCES, PEOPLE, customer_of, owners
from tests.dbt.test_triggers import EXPECTED

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark"),
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

# Stamped with the time of the dbt invocation that wrote the row: differs between any two builds.
RUN_COLUMNS = {"_run_at"}


def _value(v):
    """A cell as both engines must agree on it: numbers to 12 significant digits (sums may add up
    in another order), whatever type each engine gave them."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(f"{float(v):.12g}")
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    return v


def _rows(warehouse: Path, relation: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(f"select * from {relation}")
        names = [d[0] for d in cur.description]
        keep = [i for i, n in enumerate(names) if n not in RUN_COLUMNS]
        rows = [tuple(_value(r[i]) for i in keep) for r in cur.fetchall()]
    return [names[i] for i in keep], sorted(rows, key=repr)


def test_every_model_agrees_with_duckdb_row_for_row(spark_handcrafted, handcrafted_warehouse):
    with duckdb.connect(str(spark_handcrafted), read_only=True) as con:
        relations = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables order by all").fetchall()]
    assert len(relations) > 50 and "marts.customers" in relations and "triggers.trg_abandoned_cart" in relations
    differences = []
    for relation in relations:
        spark_names, spark_rows = _rows(spark_handcrafted, relation)
        duck_names, duck_rows = _rows(handcrafted_warehouse, relation)
        if spark_names != duck_names:
            differences.append(f"{relation}: columns {spark_names} on Spark, {duck_names} on DuckDB")
        elif spark_rows != duck_rows:
            only_spark = [r for r in spark_rows if r not in duck_rows][:2]
            only_duck = [r for r in duck_rows if r not in spark_rows][:2]
            differences.append(f"{relation}: {len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB; "
                               f"only on Spark {only_spark}, only on DuckDB {only_duck}")
    assert not differences, "\n".join(differences)


def test_identity_merges_the_same_people_under_the_same_ids(spark_handcrafted, handcrafted_warehouse):
    ids = customer_of(spark_handcrafted)  # asserts each person's records resolved to one customer
    assert len(set(ids.values())) == len(PEOPLE), "two different people were merged"
    assert ids == customer_of(handcrafted_warehouse), "customer ids must not depend on the engine"
    held = owners(spark_handcrafted)
    assert held["email:info@acme.it"] == {ids["marco"], ids["sara"], ids["paolo"]}
    assert held["phone:+393471112233"] == {ids["elena"], ids["davide"]}


@pytest.mark.parametrize("audience", sorted(AUDIENCES))
def test_audience_has_the_same_members_as_on_duckdb(spark_handcrafted, audience):
    names = {v: k for k, v in customer_of(spark_handcrafted).items()}
    with duckdb.connect(str(spark_handcrafted), read_only=True) as con:
        members = {names[r[0]] for r in con.execute(f"select customer_id from audiences.{audience}").fetchall()}
    assert members == AUDIENCES[audience]


@pytest.mark.parametrize("trigger", sorted(EXPECTED))
def test_trigger_has_the_same_occurrences_as_on_duckdb(spark_handcrafted, trigger):
    ids = customer_of(spark_handcrafted)
    names = {v: k for k, v in ids.items()}
    with duckdb.connect(str(spark_handcrafted), read_only=True) as con:
        cur = con.execute(f"select * from triggers.{trigger}")
        columns = [d[0] for d in cur.description]
        found = {(names[r["customer_id"]], r["trigger_key"], r.get("exit_reason"))
                 for r in (dict(zip(columns, row, strict=True)) for row in cur.fetchall())}
    assert found == {(p, key.format(id=ids[p]), exit_reason) for p, key, exit_reason in EXPECTED[trigger]}


def test_every_sql_unit_test_passes_on_spark(spark_handcrafted):
    # The portable macros (dates, regexes, medians) are pinned by unit tests that run on both engines.
    ok, summary = (spark_handcrafted.parent / "unit_tests.txt").read_text().split("\n", 1)
    assert ok == "True", summary
    assert "pass" in summary and "error" not in summary and "fail" not in summary, summary
