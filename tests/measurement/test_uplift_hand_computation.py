"""The uplift unit test's expected values (dbt_project/models/measurement/_measurement_unit_tests.yml)
recomputed here from its input rows with textbook formulas, so the hand computation in its
comment is checked twice: by dbt against the SQL, and here against the statistics."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
import yaml

from activations import settings

Z = 1.959964


def t_quantile_975(df: float) -> float:
    """Cornish-Fisher, as the SQL macro; checked against scipy where it is installed."""
    return (Z + (Z**3 + Z) / (4 * df) + (5 * Z**5 + 16 * Z**3 + 3 * Z) / (96 * df**2)
            + (3 * Z**7 + 19 * Z**5 + 17 * Z**3 - 15 * Z) / (384 * df**3))


def wilson(x: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of x of n (Wilson 1927), in its textbook form."""
    middle, half = x + Z**2 / 2, Z * math.sqrt(x * (n - x) / n + Z**2 / 4)
    return (middle - half) / (n + Z**2), (middle + half) / (n + Z**2)


def newcombe(x_t: int, n_t: int, x_h: int, n_h: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_t - p_h (Newcombe 1998, method 10)."""
    (low_t, high_t), (low_h, high_h) = wilson(x_t, n_t), wilson(x_h, n_h)
    p_t, p_h = x_t / n_t, x_h / n_h
    return (p_t - p_h - math.hypot(p_t - low_t, high_h - p_h),
            p_t - p_h + math.hypot(high_t - p_t, p_h - low_h))


def _unit_test(name: str) -> dict:
    path = settings.dbt_project_dir() / "models" / "measurement" / "_measurement_unit_tests.yml"
    return next(t for t in yaml.safe_load(path.read_text())["unit_tests"] if t["name"] == name)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_campaign_uplift_expected_values_follow_from_the_inputs():
    test = _unit_test("campaign_uplift_matches_the_hand_computation")
    window = timedelta(days=test["overrides"]["vars"]["attribution_window_days"])
    as_of = _at(test["overrides"]["vars"]["as_of"])
    exposures, orders = (g["rows"] for g in test["given"])
    expected = {r["campaign"]: r for r in test["expect"]["rows"]}
    row = expected["cart"]

    people: dict[str, dict] = {}
    for e in exposures:
        if e["campaign"] == "cart":
            p = people.setdefault(e["customer_id"], {"holdout": e["is_holdout"], "times": []})
            p["times"].append(_at(e["exposed_at"]))
    waiting = [who for who, p in people.items() if max(p["times"]) + window > as_of]
    assert waiting == ["w1"] and expected["cart"]["customers_waiting"] == 1
    people = {who: p for who, p in people.items() if who not in waiting}  # not measured yet
    revenue = {}
    for who, p in people.items():
        start, end = min(p["times"]), max(p["times"]) + window
        revenue[who] = sum(o["total_amount"] for o in orders if o["customer_id"] == who and o["is_completed"]
                           and start <= _at(o["ordered_at"]) < end)
    treated = [revenue[w] for w, p in people.items() if not p["holdout"]]
    holdout = [revenue[w] for w, p in people.items() if p["holdout"]]
    assert treated == [30.0, 10.0, 0.0, 0.0] and holdout == [20.0, 0.0, 0.0]  # as the comment says

    n_t, n_h = len(treated), len(holdout)
    x_t, x_h = sum(v > 0 for v in treated), sum(v > 0 for v in holdout)
    p_t, p_h = x_t / n_t, x_h / n_h
    assert round(p_t - p_h, 6) == row["conversion_uplift"]
    assert round((p_t - p_h) / p_h, 6) == row["conversion_uplift_relative"]
    low, high = newcombe(x_t, n_t, x_h, n_h)
    assert round(low, 6) == row["conversion_uplift_ci_low"]
    assert round(high, 6) == row["conversion_uplift_ci_high"]
    tiny = expected["tiny"]  # 1 of 1 treated against 0 of 1 held out: a bound at 1, where Wald gave a point
    assert (tiny["treated_converted"], tiny["holdout_converted"]) == (1, 0)
    assert tuple(round(v, 6) for v in newcombe(1, 1, 0, 1)) == (tiny["conversion_uplift_ci_low"],
                                                                tiny["conversion_uplift_ci_high"])

    m_t, m_h = sum(treated) / n_t, sum(holdout) / n_h
    v_t = sum((v - m_t) ** 2 for v in treated) / (n_t - 1)
    v_h = sum((v - m_h) ** 2 for v in holdout) / (n_h - 1)
    se2 = v_t / n_t + v_h / n_h
    df = se2**2 / ((v_t / n_t) ** 2 / (n_t - 1) + (v_h / n_h) ** 2 / (n_h - 1))
    assert round(df, 6) == row["revenue_welch_df"]
    half = t_quantile_975(df) * math.sqrt(se2)
    assert round(m_t - m_h, 6) == row["revenue_uplift"]
    assert round(m_t - m_h - half, 6) == row["revenue_uplift_ci_low"]
    assert round(m_t - m_h + half, 6) == row["revenue_uplift_ci_high"]
    assert row["too_small_to_say"] is False and expected["tiny"]["too_small_to_say"] is True


def test_the_wilson_and_newcombe_formulas_agree_with_scipy_and_the_paper():
    """Wilson against scipy's own; Newcombe against the method 10 column of Newcombe's Table II
    (Statistics in Medicine 17, 873-890, 1998), given there to 4 decimals."""
    stats = pytest.importorskip("scipy.stats")
    for x, n in ((0, 1), (1, 1), (2, 4), (1, 3), (56, 70), (48, 80), (0, 29), (12, 300)):
        ci = stats.binomtest(x, n).proportion_ci(0.95, method="wilson")
        assert wilson(x, n) == pytest.approx((ci.low, ci.high), abs=1e-7), (x, n)
    paper = {(56, 70, 48, 80): (0.0524, 0.3339), (9, 10, 3, 10): (0.1705, 0.8090),
             (5, 56, 0, 29): (-0.0381, 0.1926), (0, 10, 0, 20): (-0.1611, 0.2775),
             (10, 10, 0, 20): (0.6791, 1.0)}
    for counts, interval in paper.items():
        assert newcombe(*counts) == pytest.approx(interval, abs=5e-5), counts


def test_the_t_quantile_approximation_is_close():
    exact = {3: 3.182446, 5: 2.570582, 10: 2.228139, 30: 2.042272, 1000: 1.962339}  # Student's t, 97.5 %
    for df, value in exact.items():
        assert abs(t_quantile_975(df) - value) < (0.03 if df < 5 else 0.003), df
