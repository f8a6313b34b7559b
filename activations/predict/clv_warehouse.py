"""Customer lifetime value trained on the warehouse and published back to it (schema `predictions`).

Training reads the completed orders of `marts.orders` up to `as_of`, one purchase per customer and
day (two orders on one day are one purchase, as in the CDNOW summaries), time in weeks. It fits
twice: once on the orders before the holdout period (the last `holdout_days` before `as_of`), to
compare the repeat purchases it predicts over that period with those that happened, then on
every order up to `as_of`, the model that is published.

`predictions.customer_clv`: one row per customer with a completed order, replaced as a whole,
and only when the model passes its quality check (clv.check_quality); otherwise the previous
table stays. `predictions.clv_models`: one row per training, published or not, with its
parameters, holdout figures and the reason it was refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from activations.engine.dialect import create_table, transaction
from activations.predict import clv

SCHEMA = "predictions"
SCORES = f"{SCHEMA}.customer_clv"
MODELS = f"{SCHEMA}.clv_models"
HOLDOUT_DAYS = 90
PURCHASES_DAYS, VALUE_DAYS = 90, 365
ANNUAL_DISCOUNT_RATE = 0.10
MODEL_COLUMNS = (
    "model_version string, trained_at timestamp, as_of timestamp, status string, published boolean, "
    "reason string, customers bigint, repeat_buyers bigint, r double, alpha double, a double, b double, "
    "log_likelihood double, p double, q double, v double, spend_log_likelihood double, holdout_days integer, "
    "holdout_predicted double, holdout_actual double, holdout_error double, seconds double")

SCORE_COLUMNS = (
    "customer_id string, repeat_purchases bigint, recency_weeks double, tenure_weeks double, "
    "avg_repeat_value double, probability_alive double, expected_purchases_90d double, expected_value_365d double, "
    "model_version string, as_of timestamp, trained_at timestamp")

# One row per customer and purchase day before :until; amounts of a day's completed orders summed.
PURCHASE_DAYS = """
    select customer_id, cast(ordered_at as date) as day, sum(total_amount) as amount
    from marts.orders
    where is_completed and customer_id is not null and ordered_at < $until
    group by customer_id, cast(ordered_at as date)
"""
SUMMARY = f"""
    with purchase_days as ({PURCHASE_DAYS}),
    with_first as (
        select *, min(day) over (partition by customer_id) as first_day from purchase_days
    )
    select
        customer_id,
        count(*) - 1 as frequency,
        date_diff('day', min(day), max(day)) / 7.0 as recency,
        date_diff('day', min(day), cast($until as date)) / 7.0 as tenure,
        coalesce(avg(amount) filter (where day > first_day), 0) as monetary
    from with_first
    group by customer_id
    order by customer_id
"""
# Purchase days in [$start, $until) of customers who had bought before $start.
HOLDOUT_PURCHASES = f"""
    with purchase_days as ({PURCHASE_DAYS})
    select count(*) from purchase_days
    where day >= cast($start as date)
      and customer_id in (select customer_id from purchase_days where day < cast($start as date))
"""


@dataclass(frozen=True)
class Customers:
    """The buyers as of a moment: their ids and their summary (time in weeks)."""

    ids: pa.Array
    summary: clv.Summary


@dataclass(frozen=True)
class ClvResult:
    """What a training did: `published`, `refused` (failed its quality check) or `too_little_data`."""

    status: str
    model_version: str
    reason: str
    customers: int = 0
    repeat_buyers: int = 0
    purchases: clv.PurchaseModel | None = None
    spend: clv.SpendModel | None = None
    holdout_predicted: float | None = None
    holdout_actual: float | None = None
    seconds: float = 0.0

    @property
    def published(self) -> bool:
        return self.status == "published"

    @property
    def holdout_error(self) -> float | None:
        if self.holdout_predicted is None or self.holdout_actual is None:
            return None
        return clv.holdout_error(self.holdout_predicted, self.holdout_actual)

    def __str__(self) -> str:
        if self.status == "too_little_data":
            return f"customer lifetime value not trained: {self.reason}"
        p = self.purchases
        return (f"customer lifetime value {self.model_version} {self.status}: {self.customers:,} customers, "
                f"r={p.r:.3g} alpha={p.alpha:.3g} a={p.a:.3g} b={p.b:.3g}, holdout {self.holdout_predicted:,.0f} "
                f"predicted vs {self.holdout_actual:,.0f} ({self.holdout_error:.1%}) in {self.seconds:.1f}s"
                + (f"; refused: {self.reason}" if self.reason else ""))


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def read_customers(con, until: datetime) -> Customers:
    """Every customer with a completed order before `until`, summarised as BG/NBD and Gamma-Gamma read them."""
    table = con.sql(SUMMARY, params={"until": _naive_utc(until)}).to_arrow_table()
    column = lambda name: table.column(name).to_numpy().astype(np.float64)  # noqa: E731
    return Customers(ids=table.column("customer_id").combine_chunks(),
                     summary=clv.Summary.of(column("frequency"), column("recency"), column("tenure"),
                                            column("monetary")))


def holdout_purchases(con, start: datetime, until: datetime) -> int:
    """Purchase days in [start, until) of the customers who had bought before start."""
    return con.execute(HOLDOUT_PURCHASES, {"start": _naive_utc(start), "until": _naive_utc(until)}).fetchall()[0][0]


def ensure_tables(con) -> None:
    """The schema, the model history and the scores table (empty until a model is first published: dbt's
    on-run-start creates it the same way, macros/predictions.sql, so audiences can read it on a new warehouse)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    create_table(con, SCORES, SCORE_COLUMNS)
    create_table(con, MODELS, MODEL_COLUMNS)


def train_and_publish(con, as_of: datetime, *, holdout_days: int = HOLDOUT_DAYS, tolerance: float = 0.25,
                      min_repeat_buyers: int = clv.MIN_REPEAT_BUYERS, now: datetime | None = None) -> ClvResult:
    """Train on the orders up to `as_of`, check against the holdout, publish if it passes; record the
    training in predictions.clv_models either way. Too little data is a result, not an exception."""
    started = time.monotonic()
    trained_at = _naive_utc(now or datetime.now(UTC))
    version = f"clv-{trained_at:%Y%m%dT%H%M%S}"
    ensure_tables(con)
    holdout_start = as_of - timedelta(days=holdout_days)
    try:
        calibration = read_customers(con, holdout_start)
        predicted = float(clv.expected_purchases(clv.fit_purchases(calibration.summary, min_repeat_buyers),
                                                 calibration.summary, holdout_days / 7).sum())
        actual = holdout_purchases(con, holdout_start, as_of)
        customers = read_customers(con, as_of)
        purchases = clv.fit_purchases(customers.summary, min_repeat_buyers)
        spend = clv.fit_spend(customers.summary, min_repeat_buyers)
    except clv.TooLittleData as exc:
        result = ClvResult("too_little_data", version, str(exc), seconds=time.monotonic() - started)
        _record(con, result, trained_at, as_of, holdout_days)
        return result
    problems = clv.check_quality(purchases, spend, predicted, actual, tolerance).problems
    scores = _scores(customers, purchases, spend, version, trained_at, as_of) if not problems else None
    if scores is not None and (bad := _not_finite(scores)):
        problems, scores = [f"scores not finite for {bad:,} customers"], None
    result = ClvResult("refused" if problems else "published", version, "; ".join(problems),
                       customers=len(customers.summary.frequency), repeat_buyers=customers.summary.repeat_buyers,
                       purchases=purchases, spend=spend, holdout_predicted=predicted, holdout_actual=actual,
                       seconds=time.monotonic() - started)
    with transaction(con):
        if scores is not None:
            con.register("_attiva_clv_scores", scores)
            try:
                con.execute(f"delete from {SCORES}")
                con.execute(f"insert into {SCORES} by name select * from _attiva_clv_scores")
            finally:
                con.unregister("_attiva_clv_scores")
        _record(con, result, trained_at, as_of, holdout_days)
    return result


def _scores(customers: Customers, purchases: clv.PurchaseModel, spend: clv.SpendModel, version: str,
            trained_at: datetime, as_of: datetime) -> pa.Table:
    s = customers.summary
    n = len(s.frequency)
    return pa.table({
        "customer_id": customers.ids,
        "repeat_purchases": pa.array(s.frequency.astype(np.int64)),
        "recency_weeks": s.recency,
        "tenure_weeks": s.T,
        "avg_repeat_value": s.monetary,
        "probability_alive": clv.probability_alive(purchases, s),
        "expected_purchases_90d": clv.expected_purchases(purchases, s, PURCHASES_DAYS / 7),
        "expected_value_365d": clv.expected_value(purchases, spend, s, VALUE_DAYS / 7, ANNUAL_DISCOUNT_RATE),
        "model_version": pa.array([version] * n, pa.string()),
        "as_of": pa.array([_naive_utc(as_of)] * n, pa.timestamp("us")),
        "trained_at": pa.array([trained_at] * n, pa.timestamp("us")),
    })


def _not_finite(scores: pa.Table) -> int:
    """How many customers have a score that is NaN or infinite (a numerically broken fit)."""
    finite = np.ones(scores.num_rows, dtype=bool)
    for name in ("probability_alive", "expected_purchases_90d", "expected_value_365d"):
        finite &= np.isfinite(scores.column(name).to_numpy())
    return int(np.count_nonzero(~finite))


def _record(con, result: ClvResult, trained_at: datetime, as_of: datetime, holdout_days: int) -> None:
    p, s = result.purchases, result.spend
    row = {
        "model_version": result.model_version, "trained_at": trained_at, "as_of": _naive_utc(as_of),
        "status": result.status, "published": result.published, "reason": result.reason or None,
        "customers": result.customers, "repeat_buyers": result.repeat_buyers,
        "r": p and p.r, "alpha": p and p.alpha, "a": p and p.a, "b": p and p.b,
        "log_likelihood": p and p.log_likelihood, "p": s and s.p, "q": s and s.q, "v": s and s.v,
        "spend_log_likelihood": s and s.log_likelihood, "holdout_days": holdout_days,
        "holdout_predicted": result.holdout_predicted, "holdout_actual": result.holdout_actual,
        "holdout_error": _finite(result.holdout_error), "seconds": result.seconds,
    }
    con.execute(f"insert into {MODELS} ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values()))


def _finite(value: float | None) -> float | None:
    return value if value is None or np.isfinite(value) else None


def published_model(con) -> dict | None:
    """The model behind predictions.customer_clv now: its clv_models row, or None if none was ever published."""
    rows = con.sql(f"select * from {MODELS} where published order by trained_at desc limit 1").to_arrow_table()
    return rows.to_pylist()[0] if rows.num_rows else None
