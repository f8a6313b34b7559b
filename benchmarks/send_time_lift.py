"""Send-time optimization on a synthetic population with planted preferred hours.

    .venv/bin/python benchmarks/send_time_lift.py [--customers 40000] [--seed 7] [--segment-share 0.7]
                                                  [--min-engagements N] [--dir DIR]

Each customer has a preferred local hour (their segment's for 70 % by default, another daytime hour
for the rest) at which they open an email with probability 30 %, against 15 % at any other hour. 180 days
of newsletter history are generated (sent at random daytime hours; a third of the customers have
none, so they fall back to their segment), the best hours estimated by the project's own dbt model
(marts.customer_best_send_hour, `dbt run` on DuckDB), and one triggered message per customer
planned by the engine's own ledger.plan_new: half the customers (at random) as soon as due, half
with `send_time: best_hour`, both deferred past quiet hours (21:00-08:00) as a pass would. Opens are
drawn from the planted probabilities at the local hour each message goes out.

Prints the open rate of each arm, the lift with its 95 % interval, and the planted lift: what the
planted probabilities give at the hours each arm chose (the interval should hold it), and the
ceiling, every message at its customer's preferred hour.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import polars as pl

from activations.build import dbt_command, run_dbt
from activations.messaging import ledger
from activations.messaging.policy import QuietHours, Step, Trigger

AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # the history ends here; the test day follows
LOOKBACK_DAYS = 180
PREFERRED_P, OTHER_P = 0.30, 0.15
SEGMENTS = {"loyal": 19, "new": 12, "at_risk": 20, "lead": 9}  # the hour most of each segment prefers
ZONES = ("Europe/Rome", "Europe/London", "America/New_York")
DAYTIME = np.arange(8, 21)  # newsletters go out 08:00-20:59 local
QUIET = QuietHours(time(21), time(8))
COLUMNS = ("trigger_key", "customer_id", "occurred_at")


def population(n: int, rng: np.random.Generator, segment_share: float) -> pl.DataFrame:
    """Customers with a segment, a timezone and a planted preferred local hour."""
    segment = rng.choice(list(SEGMENTS), n)
    own = rng.random(n) < segment_share  # these share their segment's hour
    preferred = np.where(own, [SEGMENTS[s] for s in segment], rng.choice(DAYTIME, n))
    return pl.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "segment": segment,
                         "timezone": rng.choice(ZONES, n), "preferred_hour": preferred,
                         "messages": np.where(rng.random(n) < 1 / 3, 0, rng.integers(10, 61, n))})


def history(customers: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Opens of past newsletters: each sent on a random day at a random daytime local hour, opened
    with the planted probability within that hour."""
    rows = customers.select("customer_id", "timezone", "preferred_hour",
                            pl.int_ranges(0, "messages").alias("m")).explode("m").drop_nulls("m")
    n = rows.height
    hours = rng.choice(DAYTIME, n)
    days = rng.integers(1, LOOKBACK_DAYS, n)
    opened = rng.random(n) < np.where(hours == rows["preferred_hour"].to_numpy(), PREFERRED_P, OTHER_P)
    minutes = rng.integers(0, 15, n) + rng.integers(0, 45, n)
    rows = rows.with_columns(pl.Series("hour", hours), pl.Series("day", days), pl.Series("minute", minutes),
                             pl.Series("opened", opened)).filter("opened")
    start = AS_OF.replace(tzinfo=None)
    occurred = [_utc(start - timedelta(days=int(d)), int(h), int(m), tz) for d, h, m, tz in
                rows.select("day", "hour", "minute", "timezone").iter_rows()]
    return pl.DataFrame({"engagement_id": [f"e{i}" for i in range(rows.height)],
                         "email": rows["customer_id"] + "@example.it", "event_type": "open",
                         "occurred_at": occurred})


def _utc(day: datetime, hour: int, minute: int, zone: str) -> datetime:
    local = day.replace(hour=hour, minute=minute, tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC).replace(tzinfo=None)


def estimate_best_hours(root: Path, customers: pl.DataFrame, engagement: pl.DataFrame,
                        min_engagements: int | None) -> pl.DataFrame:
    """marts.customer_best_send_hour, built by the project's dbt model from the generated history."""
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts; create schema staging; create schema triggers")
        con.register("c", customers.to_arrow())
        con.register("e", engagement.to_arrow())
        con.execute("""create table marts.customers as select customer_id, timezone,
                       case when segment <> 'lead' then segment end as rfm_segment,
                       case when segment = 'lead' then 'lead' else 'customer' end as lifecycle_stage from c""")
        con.execute("""create table marts.customer_identifiers as select customer_id, 'email' as identifier_type,
                       customer_id || '@example.it' as identifier_value from c""")
        con.execute("create table staging.stg_email__engagement as select * from e")
    extra = {"send_time_min_engagements": min_engagements} if min_engagements is not None else None
    result = run_dbt(dbt_command("run", AS_OF, select="customer_best_send_hour", extra_vars=extra),
                     warehouse=warehouse)
    if not result.ok:
        raise SystemExit(str(result))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql("select customer_id, best_hour, hour_from from marts.customer_best_send_hour").pl()


def plan(root: Path, customers: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """One occurrence per customer over the next day, planned by the engine: one arm as soon as due,
    the other at the best hour; then the local hour each goes out at, past quiet hours."""
    occurred = [AS_OF.replace(tzinfo=None) + timedelta(minutes=int(m)) for m in rng.integers(0, 24 * 60, customers.height)]
    arm = np.where(rng.random(customers.height) < 0.5, "as_soon_as_due", "best_hour")
    trial = customers.with_columns(pl.Series("occurred_at", occurred), pl.Series("arm", arm))
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        for name in ("as_soon_as_due", "best_hour"):
            con.register("t", trial.filter(pl.col("arm") == name).select(
                pl.col("customer_id").alias("trigger_key"), "customer_id", "occurred_at").to_arrow())
            con.execute(f"create table triggers.trg_{name} as select * from t")
            con.unregister("t")
            ledger.plan_new(con, Trigger(
                name=f"trg_{name}", relation=f"triggers.trg_{name}", campaign=name, channel="email", consent=None,
                marketing=True, priority=0, holdout=0.0, expires_after=timedelta(hours=24), quiet_hours=QUIET,
                steps=(Step(1, "t", timedelta(0)),), columns=COLUMNS, send_time=name), AS_OF)
        planned = con.sql("select customer_id, campaign as arm, due_at, timed_by from activation.message_ledger").pl()
    planned = planned.join(customers, on="customer_id")
    hours = [_sent_hour(due, tz) for due, tz in planned.select("due_at", "timezone").iter_rows()]
    return planned.with_columns(pl.Series("sent_hour", hours))


def _sent_hour(due: datetime, zone: str) -> int:
    """The local hour a message due at `due` goes out: quiet hours hold it until 08:00."""
    local = due.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    return 8 if QUIET.contains(local.time()) else local.hour


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Difference of two open rates (b - a) and the half-width of its 95 % interval (normal)."""
    pa, pb = a.mean(), b.mean()
    return pb - pa, 1.959964 * math.sqrt(pa * (1 - pa) / len(a) + pb * (1 - pb) / len(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--segment-share", type=float, default=0.7,
                        help="share of customers whose preferred hour is their segment's")
    parser.add_argument("--min-engagements", type=int, default=None,
                        help="dbt var send_time_min_engagements (default: the project's)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    root = args.dir or Path(tempfile.mkdtemp(prefix="attiva-send-time-"))
    root.mkdir(parents=True, exist_ok=True)

    customers = population(args.customers, rng, args.segment_share)
    engagement = history(customers, rng)
    estimated = estimate_best_hours(root, customers, engagement, args.min_engagements)
    sent = plan(root, customers, rng).join(estimated, on="customer_id", how="left")
    planted = np.where(sent["sent_hour"].to_numpy() == sent["preferred_hour"].to_numpy(), PREFERRED_P, OTHER_P)
    sent = sent.with_columns(pl.Series("p", planted), pl.Series("opened", rng.random(sent.height) < planted))

    print(f"{args.customers:,} customers, {engagement.height:,} past opens; best hours by the dbt model")
    hits = estimated.join(customers, on="customer_id").group_by("hour_from").agg(
        pl.len(), (pl.col("best_hour") == pl.col("preferred_hour")).fill_null(False).mean().alias("hit"))
    for source, n, hit in hits.sort("hour_from").iter_rows():
        print(f"  hour from {source or 'nowhere'}: {n:,} customers, {hit:.1%} of them at their planted hour")
    arms = {name: sent.filter(pl.col("arm") == name) for name in ("as_soon_as_due", "best_hour")}
    for name, arm in arms.items():
        timed = ", ".join(f"{n:,} {t}" for t, n in sorted(arm.group_by("timed_by").len().iter_rows()))
        print(f"{name:<15} {arm.height:,} messages ({timed}): open rate {arm['opened'].mean():.2%} "
              f"(planted {arm['p'].mean():.2%})")
    lift, half = difference(arms["as_soon_as_due"]["opened"].to_numpy(), arms["best_hour"]["opened"].to_numpy())
    expected = arms["best_hour"]["p"].mean() - arms["as_soon_as_due"]["p"].mean()
    ceiling = PREFERRED_P - arms["as_soon_as_due"]["p"].mean()
    inside = "inside" if abs(lift - expected) <= half else "OUTSIDE"
    print(f"lift {lift * 100:+.2f} pp (95 % CI {(lift - half) * 100:+.2f} to {(lift + half) * 100:+.2f}); "
          f"planted at the chosen hours {expected * 100:+.2f} pp ({inside} the interval); "
          f"ceiling (every message at its planted hour) {ceiling * 100:+.2f} pp")


if __name__ == "__main__":
    main()
