"""Customer lifetime value at scale: training and scoring on a warehouse of synthetic orders, timed.

    .venv/bin/python benchmarks/clv_scale.py --customers 1000000

Orders come from the models' own generative process with the CDNOW parameters (FHL 2005:
r 0.243, alpha 4.414, a 0.793, b 2.426; Gamma-Gamma p 6.25, q 3.74, v 15.44): each customer
first buys in the first 12 weeks, then at a Poisson rate until dropping out after a repeat purchase,
over 78 weeks. They land in a DuckDB file as `marts.orders`; the timed part is what the
Dagster asset runs (clv_warehouse.train_and_publish: summaries, two BG/NBD fits, Gamma-Gamma,
scoring, writing predictions.customer_clv), then its parts on the in-memory summary.
Target at 1M customers on 2 cores: training and scoring within 5 minutes.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from activations.predict import clv, clv_warehouse

START = datetime(1997, 1, 1)
WEEKS = 78
AS_OF = (START + timedelta(weeks=WEEKS)).replace(tzinfo=UTC)
R, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426
P, Q, V = 6.25, 3.74, 15.44


def synthetic_orders(customers: int, seed: int = 7) -> pa.Table:
    """One row per purchase: customer_id, ordered_at, is_completed, total_amount."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(R, 1 / ALPHA, customers)  # purchases per week
    dropout = rng.beta(A, B, customers)
    spend_rate = rng.gamma(Q, 1 / V, customers)
    ids, weeks = [np.arange(customers)], [rng.uniform(0, 12, customers)]
    active, at = np.arange(customers), weeks[0]
    while active.size:
        at = at + rng.exponential(1 / rate[active])
        within = at < WEEKS
        active, at = active[within], at[within]
        ids.append(active)
        weeks.append(at)
        stays = rng.random(active.size) >= dropout[active]  # BG/NBD: a coin after each repeat purchase
        active, at = active[stays], at[stays]
    customer, week = np.concatenate(ids), np.concatenate(weeks)
    amount = rng.gamma(P, 1 / spend_rate[customer])
    ordered_at = np.datetime64(START, "s") + (week * 7 * 86400).astype("timedelta64[s]")
    return pa.table({
        "customer_id": pa.array(np.char.add("c", customer.astype(str))),
        "ordered_at": pa.array(ordered_at),
        "is_completed": pa.array(np.ones(customer.size, dtype=bool)),
        "total_amount": pa.array(np.round(amount, 2)),
    })


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()

    started = time.monotonic()
    orders = synthetic_orders(args.customers)
    print(f"synthesized {orders.num_rows:,} orders of {args.customers:,} customers in {time.monotonic() - started:.1f}s")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warehouse.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute("create schema marts")
            con.register("synthetic", orders)
            con.execute("create table marts.orders as select * from synthetic")
        del orders

        with duckdb.connect(str(path)) as con:
            started = time.monotonic()
            result = clv_warehouse.train_and_publish(con, AS_OF)
            total = time.monotonic() - started
            print(result)
            print(f"train_and_publish (what the asset runs): {total:.1f}s, peak RSS {peak_rss_gb():.2f} GB")

            started = time.monotonic()
            customers = clv_warehouse.read_customers(con, AS_OF)
            print(f"  summary from marts.orders: {time.monotonic() - started:.1f}s")
        summary = customers.summary
        for name, step in (("BG/NBD fit", lambda: clv.fit_purchases(summary)),
                           ("Gamma-Gamma fit", lambda: clv.fit_spend(summary))):
            started = time.monotonic()
            model = step()
            print(f"  {name}: {time.monotonic() - started:.1f}s  {model}")
        purchases, spend = result.purchases, result.spend
        for name, step in (("probability_alive", lambda: clv.probability_alive(purchases, summary)),
                           ("expected_purchases_90d", lambda: clv.expected_purchases(purchases, summary, 90 / 7)),
                           ("expected_value_365d", lambda: clv.expected_value(purchases, spend, summary, 365 / 7))):
            started = time.monotonic()
            step()
            print(f"  {name}: {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
