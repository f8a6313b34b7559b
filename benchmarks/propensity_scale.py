"""Propensity cost at scale: features, training (time split, all three models), scoring and publishing for N
synthetic customers, on this machine's cores.

    .venv/bin/python benchmarks/propensity_scale.py [--customers 1000000]

Customers buy and leave as in the BG/NBD story: each has a purchase rate (gamma) and a lifetime
(exponential) from a first visit in the last two years; orders fall in their active time, product
views around them, and 30 % of them came in as CRM leads. The frames go into an in-memory DuckDB
through the same views as the warehouse (propensity_features.use_frames), and
`train_and_publish` runs as the weekly Dagster step does: features at five cut-offs, six fits,
scoring everyone, writing both tables. Prints each model's AUC against its rule, the time by
phase and peak memory. The issue's limit: 1M customers within 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

from activations.predict import propensity_features as pf
from activations.predict.propensity import Snapshots, cutoffs
from activations.predict.propensity_tables import SCORES, train_and_publish

END = datetime(2025, 6, 30, tzinfo=UTC)  # pinned so runs are comparable
DAY = np.timedelta64(1, "D")


def synthetic(customers: int, seed: int = 7) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    end = np.datetime64(END.replace(tzinfo=None), "s")
    ids = np.char.add("c", np.arange(customers).astype(str))
    first_seen = end - (rng.uniform(60, 730, customers) * DAY).astype("timedelta64[s]")
    rate = rng.gamma(0.8, 1 / 40, customers)  # orders a day while active: mean one per 50 days
    lifetime = rng.exponential(300, customers)
    active_days = np.minimum(lifetime, (end - first_seen) / DAY)
    n_orders = rng.poisson(rate * active_days)
    owner = np.repeat(np.arange(customers), n_orders)
    at = first_seen[owner] + (rng.uniform(0, 1, len(owner)) * active_days[owner] * DAY).astype("timedelta64[s]")
    n_views = rng.poisson(3 * rate * active_days + 0.5)
    viewer = np.repeat(np.arange(customers), n_views)
    seen = first_seen[viewer] + (rng.uniform(0, 1, len(viewer)) * np.maximum(active_days[viewer], 1)
                                 * DAY).astype("timedelta64[s]")
    lead = rng.random(customers) < 0.3
    return {
        "people": pa.table({"customer_id": ids, "first_seen_at": first_seen,
                            "became_lead_at": np.where(lead, first_seen, np.datetime64("NaT")),
                            "has_company": lead & (rng.random(customers) < 0.5),
                            "senior_title": lead & (rng.random(customers) < 0.2)}),
        "orders": pa.table({"customer_id": ids[owner], "ordered_at": at,
                            "amount": np.round(rng.gamma(2, 30, len(owner)), 2)}),
        "events": pa.table({"customer_id": ids[viewer], "occurred_at": seen,
                            "event_type": np.full(len(viewer), "product_view")}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.monotonic()
    frames = synthetic(args.customers)
    made = time.monotonic()
    print(f"{args.customers:,} customers, {frames['orders'].num_rows:,} orders, {frames['events'].num_rows:,} "
          f"product views; generated in {made - started:.1f}s; {os.cpu_count()} cores")
    con = duckdb.connect()
    pf.use_frames(con, **frames)
    snapshots = Snapshots(con)
    for cutoff, horizon in cutoffs(END):  # the features and labels every model reads, timed on their own
        snapshots.features(cutoff)
        if horizon:
            snapshots.labels(cutoff, horizon)
    windows = time.monotonic()
    print(f"  features and labels at {len({c for c, _ in cutoffs(END)})} cut-offs: {windows - made:.1f}s")
    runs = train_and_publish(con, END, snapshots=snapshots)
    total = time.monotonic() - made
    for run in runs:
        print(f"  {run}  [fit, judge, refit, score: {run.seconds:.1f}s; trained on "
              f"{min(run.train_rows, 300_000):,} of {run.train_rows:,}]")
    rows = con.execute(f"select count(*) from {SCORES}").fetchone()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"features + training + scoring + publishing: {total:.1f}s ({rows:,} customers scored); "
          f"peak memory {peak:,.0f} MB")


if __name__ == "__main__":
    main()
