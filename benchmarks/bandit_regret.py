"""Thompson sampling against a fixed 50/50 split on a synthetic A/B test with a planted best variant.

Each campaign runs `--days` daily batches of `--per-day` customers; variant A is clicked by 4 %,
B by 6 %. The bandit plans each day with the engine's own code (allocation.thompson and
allocation.choose) from the clicks of messages sent up to two days earlier, as a pass does: a
message counts once a day has passed since the start of the day it was sent in (allocation.SETTLE).
Regret: expected clicks lost against sending B to all. Repeated over `--campaigns` campaigns; the
inverse-propensity estimate of "always B" from the bandit's logs is checked against the truth.

    .venv/bin/python benchmarks/bandit_regret.py --campaigns 200 --days 30 --per-day 1000
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from activations.messaging import allocation, offpolicy

VARIANTS = ("a", "b")
RATES = np.array([0.04, 0.06])
START = datetime(2026, 1, 1, 9, tzinfo=UTC)


def run_campaign(n: int, days: int, per_day: int, rng: np.random.Generator) -> tuple[float, float, pl.DataFrame]:
    """One bandit campaign: (its expected regret in clicks, B's share on the last day, its logs)."""
    campaign = f"bench_{n}"
    successes, trials = np.zeros((days, 2)), np.zeros((days, 2))
    regret, frames, shares = 0.0, [], [0.5, 0.5]
    for day in range(days):
        settled = slice(0, max(day - 1, 0))  # sent two days or more before: clicked or not by now
        shares = allocation.thompson(successes[settled].sum(axis=0).astype(int).tolist(),
                                     trials[settled].sum(axis=0).astype(int).tolist(),
                                     allocation.day_seed(campaign, 1, START + timedelta(days=day)))
        customers = pl.Series([f"{campaign}-{day}-{i}" for i in range(per_day)])
        chosen, probability = allocation.choose(campaign, 1, customers, VARIANTS, shares)
        index = (chosen == "b").cast(pl.Int8).to_numpy()
        clicked = rng.random(per_day) < RATES[index]
        np.add.at(successes[day], index, clicked)
        np.add.at(trials[day], index, 1)
        regret += float((RATES.max() - RATES[index]).sum())
        frames.append(pl.DataFrame({"variant": chosen, "probability": probability, "reward": clicked.astype(int)}))
    return regret, shares[1], pl.concat(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    started = time.perf_counter()
    regrets, final_b, covered, errors = [], [], 0, []
    for n in range(args.campaigns):
        regret, share_b, logs = run_campaign(n, args.days, args.per_day, rng)
        regrets.append(regret)
        final_b.append(share_b)
        found = offpolicy.estimate(logs, {"b": 1.0})
        low, high = found.interval
        covered += low <= RATES[1] <= high
        errors.append(found.standard_error)
    messages = args.days * args.per_day
    even = messages * float(RATES.max() - RATES.mean())  # a fixed 50/50 split's expected regret
    regrets_arr, final = np.array(regrets), np.array(final_b)
    print(f"{args.campaigns} campaigns x {args.days} days x {args.per_day:,} customers a day "
          f"({messages:,} messages each), click rates A {RATES[0]:.0%}, B {RATES[1]:.0%}")
    print("cumulative regret (expected clicks lost vs B to all), per campaign:")
    print(f"  fixed 50/50 split   {even:8.1f}")
    print(f"  thompson sampling   {regrets_arr.mean():8.1f}  (median {np.median(regrets_arr):.1f}, "
          f"90th percentile {np.percentile(regrets_arr, 90):.1f}): {regrets_arr.mean() / even:.0%} of the split's")
    print(f"ends on the planted best (B's share > 50 % on the last day): {(final > 0.5).mean():.1%} of campaigns; "
          f"B's last-day share: median {np.median(final):.1%}")
    print(f"IPS estimate of 'always B' from the bandit's logs: its 95 % interval holds the true "
          f"{RATES[1]:.0%} in {covered / args.campaigns:.1%} of campaigns (median standard error "
          f"{np.median(errors):.2%})")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
