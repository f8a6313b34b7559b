"""The audience builder's conditions read alike on Spark: its predicates (quotes as chr(39), an
or-group, events in a window before as_of, membership, predictions, null and timestamp tests) run in
a Spark session with the dbt target's settings, on a few rows whose answers are known. The dates go
through `timestampadd`, as the project's spark__dateadd renders dbt.dateadd there.

Skips without pyspark or Java 17, as the other Spark tests do (fails under ATTIVA_REQUIRE_SYSTEM=1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from activations.studio.builder import PREDICTED, Catalog, Condition, Dialect, check, customer_columns
from tests.spark.conftest import _check_requirements

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
ROOT = Path(__file__).resolve().parents[2]
NOW = "cast('2026-11-20 12:00:00' as timestamp)"
SPARK = Dialect(relation=lambda name: name, prediction=lambda table: table, as_of=NOW,
                days_before_as_of=lambda days: f"timestampadd(day, -{days}, {NOW})")
VIEWS = {
    "customers": "('c1', 'champion', true, cast('2026-01-01 10:00:00' as timestamp), 'L' || chr(39) || 'Aquila'), "
                 "('c2', 'loyal', true, cast('2025-01-01 10:00:00' as timestamp), 'Milano'), "
                 "('c3', 'new', false, null, 'Roma') "
                 "as t(customer_id, rfm_segment, email_marketable, last_order_at, city)",
    "events": "('c2', 'product_view', 'p1', cast('2026-11-18 10:00:00' as timestamp)), "
              "('c2', 'product_view', 'p1', cast('2026-11-19 10:00:00' as timestamp)), "
              "('c3', 'product_view', 'p1', cast('2026-10-01 10:00:00' as timestamp)) "
              "as t(customer_id, event_type, product_id, occurred_at)",
    "products": "('p1', 'tea') as t(product_id, category)",
    "aud_at_risk": "('c3') as t(customer_id)",
    "customer_propensity": "('c1', 0.9), ('c2', 0.7) as t(customer_id, churn_probability)",
}
CASES = [  # conditions, the customers they select
    ([Condition("trait", "city", "in", "L'Aquila, Roma")], {"c1", "c3"}),
    ([Condition("trait", "rfm_segment", "=", "champion", group="A"),
      Condition("event", "product_view", category="tea", times="2", days="7", row=1, group="A"),
      Condition("consent", "email_marketable", row=2)], {"c1", "c2"}),
    ([Condition("not_in_audience", "aud_at_risk"), Condition("predicted", "churn_probability", ">=", "0.8", row=1),
      Condition("trait", "last_order_at", ">=", "2025-06-01", row=2)], {"c1"}),
    ([Condition("in_audience", "aud_at_risk"), Condition("trait", "last_order_at", "is null", row=1)], {"c3"}),
]


def test_the_builders_conditions_select_the_same_customers_on_spark(tmp_path):
    _check_requirements()
    from activations import spark

    catalog = Catalog(customer_columns(ROOT), tuple(PREDICTED), ("tea",), ("aud_at_risk",))
    with spark.session(tmp_path / "spark") as session:
        for name, rows in VIEWS.items():
            session.sql(f"create or replace temporary view {name} as select * from values {rows}")
        for conditions, expected in CASES:
            checked = check(conditions, catalog, SPARK)
            assert not checked.problems
            found = session.sql(f"select c.customer_id from customers as c where {checked.where()}").collect()
            assert {row[0] for row in found} == expected, checked.where()
