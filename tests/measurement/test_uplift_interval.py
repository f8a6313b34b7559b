"""campaign_uplift's conversion interval (Newcombe's hybrid score interval, from each group's Wilson
interval), run by dbt on a real DuckDB file holding only the model's two inputs, on counts whose
interval Newcombe's paper gives (Statistics in Medicine 17, 873-890, 1998, Table II, method 10, to 4
decimals) and recomputed to 6 by the textbook formulas in test_uplift_hand_computation.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from simulator.calibration import build_uplift
from tests.measurement.test_uplift_hand_computation import newcombe

EXPOSED = datetime(2026, 10, 1, 9)
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)  # every 7-day window has closed

# campaign: (treated converted, treated, holdout converted, holdout), the paper's interval
CASES = {
    "paper_a": ((56, 70, 48, 80), (0.0524, 0.3339)),
    # none converted in the holdout: its Wilson interval [0, 0.117] still has width (Wald: a point at 0)
    "zero_holdout": ((5, 56, 0, 29), (-0.0381, 0.1926)),
    # every treated customer converted, no held-out one: the high bound is 1 exactly
    "all_or_nothing": ((10, 10, 0, 20), (0.6791, 1.0)),
}


def _inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    people, orders = [], []
    for campaign, ((x_t, n_t, x_h, n_h), _) in CASES.items():
        for holdout, converted, size in ((False, x_t, n_t), (True, x_h, n_h)):
            for i in range(size):
                who = f"{campaign}-{'h' if holdout else 't'}{i}"
                people.append({"campaign": campaign, "customer_id": who, "is_holdout": holdout,
                               "was_sent": not holdout, "exposed_at": EXPOSED})
                if i < converted:
                    orders.append({"customer_id": who, "ordered_at": EXPOSED + timedelta(days=1),
                                   "is_completed": True, "total_amount": 40.0})
    # treated customers and no holdout: nothing to compare with, no interval (and no error)
    people += [{"campaign": "no_holdout", "customer_id": f"n{i}", "is_holdout": False, "was_sent": True,
                "exposed_at": EXPOSED} for i in range(40)]
    return pl.DataFrame(people), pl.DataFrame(orders)


@pytest.fixture(scope="module")
def uplift(tmp_path_factory) -> dict[str, tuple]:
    warehouse = tmp_path_factory.mktemp("uplift_interval") / "warehouse.duckdb"
    build_uplift(warehouse, *_inputs(), as_of=AS_OF)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("""select campaign, treated_converted, treated_customers, holdout_converted,
                                     holdout_customers, conversion_uplift_ci_low, conversion_uplift_ci_high,
                                     too_small_to_say
                              from measurement.campaign_uplift""").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.mark.parametrize("campaign", list(CASES))
def test_the_conversion_interval_is_newcombes(uplift, campaign):
    counts, paper = CASES[campaign]
    row = uplift[campaign]
    assert row[:4] == counts
    assert row[4:6] == pytest.approx(paper, abs=5e-5)
    assert row[4:6] == tuple(round(v, 6) for v in newcombe(*counts))


def test_the_verdict_reads_the_new_interval(uplift):
    # 70 and 80 customers, 104 conversions: judged, and the interval is above zero
    assert uplift["paper_a"][6] is False and uplift["paper_a"][4] > 0
    # 29 held out, 5 conversions: too small to say, whatever the interval
    assert uplift["zero_holdout"][6] is True


def test_no_holdout_no_interval(uplift):
    assert uplift["no_holdout"][3] == 0 and uplift["no_holdout"][4:7] == (None, None, True)
