"""The uplift measurement against the simulated world: many small simulated campaigns, their conversions
drawn by the world's own traits and planted effects, measured by `measurement.campaign_uplift` (the
dbt model, run by dbt on a warehouse holding only its two inputs). A calibrated 95 % interval holds
the planted uplift in about 95 % of them (tests/test_simulator.py; benchmarks/uplift_calibration.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from activations.build import dbt_command, run_dbt
from simulator.world import DAY, ORGANIC_MEAN, ORGANIC_SHAPE, UPLIFT, WINDOW_DAYS

SENT_SHARE = 0.7  # of the treated: send-time checks (consent, caps, exits) stop the rest


@dataclass(frozen=True)
class Calibration:
    campaigns: int
    covered: int  # intervals holding the planted uplift
    too_small: int
    mean_width: float  # of the 95 % interval, in conversion-rate points

    @property
    def coverage(self) -> float:
        return self.covered / self.campaigns if self.campaigns else 0.0


def campaigns(rng: np.random.Generator, count: int, size: int, holdout_share: float):
    """`count` campaigns of `size` customers with the world's traits, conversions drawn by the world;
    returns (assignments, orders, planted intention-to-treat uplift per campaign)."""
    names = list(UPLIFT)
    assignments, orders, planted = [], [], {}
    start = datetime(2026, 10, 1, 9)
    for k in range(count):
        campaign = f"c{k:03d}"
        organic = 1 - np.exp(-rng.gamma(ORGANIC_SHAPE, ORGANIC_MEAN / ORGANIC_SHAPE, size) * WINDOW_DAYS)
        respond = np.minimum(UPLIFT[names[k % len(names)]] * rng.gamma(2.0, 0.5, size), 0.95)
        holdout = rng.random(size) < holdout_share
        sent = ~holdout & (rng.random(size) < SENT_SHARE)
        # What assigning a customer to the campaign changes, averaged over everyone it was for.
        planted[campaign] = float(np.mean(SENT_SHARE * respond * (1 - organic)))
        converted = (rng.random(size) < organic) | (sent & (rng.random(size) < respond))
        exposed = [start + timedelta(hours=int(h)) for h in rng.integers(0, 48, size)]
        ids = [f"{campaign}-{i}" for i in range(size)]
        assignments.append(pl.DataFrame({"campaign": campaign, "customer_id": ids, "is_holdout": holdout,
                                         "was_sent": sent, "exposed_at": exposed}))
        delay = rng.uniform(0, WINDOW_DAYS * DAY - 1, size)
        orders.append(pl.DataFrame({"customer_id": ids, "exposed_at": exposed, "delay": delay})
                      .filter(pl.Series(converted))
                      .select("customer_id", ordered_at=pl.col("exposed_at") + pl.duration(seconds=pl.col("delay")),
                              is_completed=pl.lit(True), total_amount=pl.lit(40.0)))
    return pl.concat(assignments), pl.concat(orders), planted


def build_uplift(warehouse: Path, assignments: pl.DataFrame, orders: pl.DataFrame,
                 as_of: datetime = datetime(2026, 11, 1, tzinfo=UTC)) -> None:
    """`warehouse` (a new file) holding only campaign_uplift's two inputs, and the model built on it by dbt."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema measurement; create schema marts")
        con.register("a", assignments.to_arrow())
        con.register("o", orders.to_arrow())
        con.execute("create table measurement.campaign_assignments as select * from a")
        con.execute("create table marts.orders as select * from o")
    result = run_dbt(dbt_command("run", as_of, select="campaign_uplift"), warehouse=warehouse)
    if not result.ok:
        raise RuntimeError(str(result))


def measure(rng: np.random.Generator, warehouse: Path, count: int, size: int, holdout_share: float) -> Calibration:
    """Simulate `count` campaigns into `warehouse` (a new file), measure them with dbt, count the covered."""
    assignments, orders, planted = campaigns(rng, count, size, holdout_share)
    build_uplift(warehouse, assignments, orders)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("""select campaign, conversion_uplift_ci_low, conversion_uplift_ci_high, too_small_to_say
                              from measurement.campaign_uplift""").fetchall()
    judged = [r for r in rows if not r[3]]
    covered = sum(low <= planted[campaign] <= high for campaign, low, high, _ in judged)
    width = float(np.mean([high - low for _, low, high, _ in judged])) if judged else 0.0
    return Calibration(len(rows), covered, len(rows) - len(judged), width)
