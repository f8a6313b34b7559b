"""How an A/B step's variants are shared out: an even split, or Thompson sampling on a reward.

Thompson sampling gives each variant Beta(1 + successes, 1 + failures) from the messages of the
step that have had time to earn their reward, and allocates to each variant the probability that
its draw is the highest (Monte Carlo, seeded per campaign, step and day: a rerun plans the same).
Each customer's variant is then drawn with those probabilities from a hash of campaign, customer
and step, so re-planning keeps it. The probability of the chosen variant goes into the ledger
(`variant_probability`): what an off-policy estimate (offpolicy.py) weights by.

The holdout is not touched here: it is decided first, by its own hash (ledger.in_holdout).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from activations import warehouse

ALLOCATIONS = ("even", "thompson")
REWARDS = ("clicked", "converted")
# A message counts towards its variant's successes or failures once it has had this long to earn the
# reward: counting fresher ones as failures would hold back whichever variant is sent most right now.
# Conversions: the attribution window (dbt var attribution_window_days, default 7).
SETTLE = {"clicked": timedelta(days=1), "converted": timedelta(days=7)}
DRAWS = 10_000
# Every variant keeps at least this share between them (split evenly): the bandit never stops
# exploring, and every variant stays in the logs for an off-policy estimate to weight.
EXPLORE = 0.02


def bucket(*parts: object) -> float:
    """A number in [0, 1) from a hash of the parts: the same parts, the same number, on any run."""
    text = "\x1f".join(str(p) for p in parts)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0x100000000


def thompson(successes: list[int], trials: list[int], seed: int, draws: int = DRAWS) -> list[float]:
    """The share of each variant: how often its Beta draw is the highest, kept above EXPLORE / k."""
    k = len(trials)
    if len(set(zip(successes, trials, strict=True))) == 1:  # nothing tells them apart: exactly even
        return [1 / k] * k
    rng = np.random.default_rng(seed)
    a = 1 + np.asarray(successes, dtype=float)
    b = 1 + np.asarray(trials, dtype=float) - np.asarray(successes, dtype=float)
    best = rng.beta(a, b, size=(draws, k)).argmax(axis=1)
    wins = np.bincount(best, minlength=k) / draws
    return [float((1 - EXPLORE) * w + EXPLORE / k) for w in wins]


def day_seed(campaign: str, step: int, now: datetime) -> int:
    """The Monte Carlo seed of a step's allocation on the day of `now`."""
    return int(bucket(campaign, step, now.date().isoformat()) * 0x100000000)


def choose(campaign: str, step: int, customer_ids: pl.Series, templates: tuple[str, ...],
           shares: list[float]) -> tuple[pl.Series, pl.Series]:
    """Each customer's template, drawn with `shares` from a hash of campaign, customer and step (the step
    too, so the variants of two A/B steps are drawn apart), and the probability it had."""
    edges = np.cumsum(shares)
    edges[-1] = 1.0  # rounding never leaves a customer past the last variant
    picks = np.searchsorted(edges, [bucket(campaign, c, step, "variant") for c in customer_ids.to_list()],
                            side="right")
    return (pl.Series([templates[i] for i in picks], dtype=pl.String),
            pl.Series([shares[i] for i in picks], dtype=pl.Float64))


def settled_before(reward: str, now: datetime) -> datetime:
    """Messages sent before this have had time to earn `reward`; from the day's start, so the counts
    (and the allocation) hold all day."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return day - SETTLE[reward]


def outcomes(con, campaign: str, step: int, reward: str, before: datetime) -> pl.DataFrame:
    """The step's messages sent before `before` (not the holdout's): variant, the logged probability
    of that variant (null before it was logged) and the reward (0 or 1), from the measurement views.
    Empty where the views are not built yet."""
    empty = pl.DataFrame(schema={"variant": pl.String, "probability": pl.Float64, "reward": pl.Int32})
    if not warehouse.has_table(con, "measurement", "message_outcomes"):
        return empty
    if reward == "converted":
        if not warehouse.has_table(con, "measurement", "message_conversions"):
            return empty
        earned = ("case when exists (select 1 from measurement.message_conversions as c "
                  "where c.message_id = o.message_id) then 1 else 0 end")
    else:
        earned = "case when o.clicked then 1 else 0 end"
    frame = con.sql(f"""
        select o.variant, l.variant_probability as probability, {earned} as reward
        from measurement.message_outcomes as o
        join activation.message_ledger as l on l.message_id = o.message_id
        where o.campaign = ? and o.step = ? and not o.is_holdout and o.sent_at < ?""",
                    params=[campaign, step, before]).pl()
    return frame.cast({"variant": pl.String, "probability": pl.Float64, "reward": pl.Int32}) if frame.height else empty


def shares(con, campaign: str, step: int, templates: tuple[str, ...], reward: str, now: datetime) -> list[float]:
    """A Thompson step's allocation on the day of `now`, from the outcomes settled so far."""
    seen = outcomes(con, campaign, step, reward, settled_before(reward, now))
    counts = {v: (s, n) for v, s, n in seen.group_by("variant").agg(
        pl.col("reward").sum(), pl.len()).iter_rows()}
    successes = [int(counts.get(t, (0, 0))[0]) for t in templates]
    trials = [int(counts.get(t, (0, 0))[1]) for t in templates]
    return thompson(successes, trials, day_seed(campaign, step, now))


def allocated_now(con, campaign: str) -> dict[int, dict[str, float | None]]:
    """Each A/B step of the campaign (in the ledger): every variant's probability in its latest planned message."""
    # Only each variant's latest row leaves the database (an A/B step of 1M customers has 1M rows).
    latest = con.execute("""
        select step, template, variant_probability from (
            select step, template, variant_probability,
                   row_number() over (partition by step, template order by planned_at desc) as nth
            from activation.message_ledger
            where campaign = ? and step in (select step from activation.message_ledger where campaign = ?
                                            group by step having count(distinct template) > 1)) as ranked
        where nth = 1""", [campaign, campaign]).fetchall()
    allocated: dict[int, dict[str, float | None]] = {}
    for step, template, probability in latest:
        allocated.setdefault(step, {})[template] = probability
    return allocated
