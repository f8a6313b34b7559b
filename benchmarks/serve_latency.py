"""Profile lookup latency of `attiva serve` over loopback, and events acknowledged durably per second.

A synthetic warehouse of ``--customers`` people (marts and two audiences, written by DuckDB SQL;
or ``--warehouse`` for a real one) is turned into a serving snapshot (build time printed), then
`attiva serve` runs in its own process and this process measures, on keep-alive connections:

1. sequential lookups by random email (1 connection): p50 / p95 / p99 / max;
2. lookups paced at ``--rate`` requests/s from ``--threads`` threads for ``--seconds``: achieved rate,
   percentiles (from each request's scheduled start, so queueing counts) and errors;
3. events: batches of 100 posted back to back for ``--seconds``, then single events from ``--threads``
   connections at once: events/s acknowledged (fsync'ed), and how many files group commit wrote.

    .venv/bin/python benchmarks/serve_latency.py [--customers 100000] [--rate 500] [--seconds 5]

The issue's targets (1M customers, 2,000 lookups/s open loop from another process, 5,000 events/s)
are measured by serve_load.py.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.serve.keys import add_key  # noqa: E402
from activations.serve.store import build_serving_snapshot  # noqa: E402


def synthetic_warehouse(path: Path, customers: int) -> None:
    """marts.customers, customer_identifiers, customer_recommendations, products and two audiences."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema audiences")
        con.execute("""create table marts.products as
            select 'P' || i as product_id, 'Product ' || i as product_name, 'cat' || (i % 12) as category,
                   cast(5 + i % 90 as decimal(18, 2)) as price, cast(5 + i % 90 as decimal(18, 2)) * 0.8 as current_price,
                   i % 7 = 0 as is_on_promotion, case when i % 7 = 0 then 20.0 end as discount_pct,
                   case when i % 7 = 0 then 'Promo ' || i end as promotion_name,
                   case when i % 7 = 0 then timestamp '2099-01-01' end as promotion_ends_at
            from range(500) t(i)""")
        con.execute(f"""create table marts.customers as
            select 'cus_' || lpad(cast(i as varchar), 12, '0') as customer_id, 'person' || i || '@example.it' as email,
                   '+39333' || lpad(cast(i as varchar), 7, '0') as phone, 'Nome' || i as first_name,
                   'Cognome' || i as last_name, 'Milano' as city, 'IT' as country, 'Europe/Rome' as timezone,
                   false as is_b2b, cast(null as varchar) as company, 'customer' as lifecycle_stage,
                   cast(i % 100 as integer) as lead_score, 'loyal' as rfm_segment, 'low' as churn_risk,
                   cast(i % 9 as bigint) as orders_count, 'cat' || (i % 12) as favourite_category,
                   'P' || (i % 500) as favourite_product_id, true as email_marketable, true as consent_email,
                   false as consent_sms, true as consent_ads, i % 10 <> 0 as consent_profiling
            from range({customers}) t(i)""")
        con.execute("""create table marts.customer_identifiers as
            select customer_id, 'email' as identifier_type, email as identifier_value, false as is_shared
            from marts.customers
            union all select customer_id, 'phone', phone, false from marts.customers
            union all select customer_id, 'device_id', 'dev-' || customer_id, false from marts.customers""")
        con.execute("""create table marts.customer_recommendations as
            select customer_id, r as recommendation_rank,
                   'P' || ((hash(customer_id) + r * 37) % 500) as product_id, 1.0 / r as score,
                   'goes_with_purchases' as reason
            from marts.customers, range(1, 6) t(r)""")
        con.execute("create table audiences.aud_champions as select customer_id from marts.customers "
                    "where hash(customer_id) % 10 = 0")
        con.execute("create table audiences.aud_at_risk as select customer_id from marts.customers "
                    "where hash(customer_id) % 7 = 0")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return f"p50 {q[49]:.2f} ms  p95 {q[94]:.2f} ms  p99 {q[98]:.2f} ms  max {ordered[-1]:.2f} ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lookup(conn: http.client.HTTPConnection, key: str, email: str) -> int:
    conn.request("GET", f"/v1/profiles/email/{email.replace('@', '%40')}", headers={"Authorization": f"Bearer {key}"})
    answer = conn.getresponse()
    answer.read()
    return answer.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--warehouse", type=Path, help="a real warehouse instead of the synthetic one")
    parser.add_argument("--sequential", type=int, default=5_000, help="sequential lookups")
    parser.add_argument("--rate", type=float, default=500, help="paced lookups per second")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="attiva-serve-bench-") as tmp:
        tmp = Path(tmp)
        warehouse = args.warehouse
        if warehouse is None:
            warehouse = tmp / "warehouse.duckdb"
            started = time.perf_counter()
            synthetic_warehouse(warehouse, args.customers)
            print(f"synthetic warehouse: {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
        built = build_serving_snapshot(warehouse, tmp / "serving")
        size = (built.path / "store.sqlite").stat().st_size
        print(f"serving snapshot: {built.customers:,} customers, {built.identifiers:,} identifiers, "
              f"{size / 1e6:.0f} MB, built in {built.seconds:.1f} s")
        with duckdb.connect(str(warehouse), read_only=True) as con:
            emails = [r[0] for r in con.execute("select identifier_value from marts.customer_identifiers "
                                                "where identifier_type = 'email' using sample 20000 rows").fetchall()]
        key = add_key(tmp / "keys.yml", "bench", per_second=1e9, burst=10**9)
        port = free_port()
        env = {**os.environ, "ATTIVA_SERVING": str(tmp / "serving"), "ATTIVA_LANDING": str(tmp / "landing")}
        os.environ["BENCH_LANDING"] = str(tmp / "landing")
        server = subprocess.Popen([sys.executable, "-m", "activations.cli", "serve", "--port", str(port), "--keys",
                                   str(tmp / "keys.yml"), "--no-demo"], env=env, cwd=ROOT,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            run(args, port, key, emails)
        finally:
            server.terminate()
            server.wait(timeout=10)


def run(args, port: int, key: str, emails: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for email in emails[:200]:  # warm-up
        lookup(conn, key, email)
    samples = []
    for _ in range(args.sequential):
        started = time.perf_counter()
        assert lookup(conn, key, random.choice(emails)) == 200
        samples.append((time.perf_counter() - started) * 1000)
    print(f"sequential lookups ({args.sequential:,}, 1 connection): {percentiles(samples)}")

    paced: list[float] = []
    errors = [0]
    lock = threading.Lock()
    interval = args.threads / args.rate
    begin = time.perf_counter() + 0.1

    def worker(offset: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port)
        mine, bad = [], 0
        i = 0
        while True:
            due = begin + (offset + i * args.threads) / args.rate
            if due - begin > args.seconds:
                break
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            try:
                ok = lookup(c, key, random.choice(emails)) == 200
            except OSError:
                ok, c = False, http.client.HTTPConnection("127.0.0.1", port)
            mine.append((time.perf_counter() - due) * 1000)
            bad += not ok
            i += 1
        with lock:
            paced.extend(mine)
            errors[0] += bad

    assert interval > 0
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"paced lookups at {args.rate:,.0f}/s for {args.seconds:g} s ({args.threads} threads): {len(paced):,} "
          f"requests, {errors[0]} errors; {percentiles(paced)}")

    conn = http.client.HTTPConnection("127.0.0.1", port)  # the first one idled past the keep-alive timeout
    sent, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        now = datetime.now(UTC).isoformat()
        batch = [{"event_id": uuid.uuid4().hex, "event_type": "product_view", "occurred_at": now,
                  "anonymous_id": "bench", "product_id": "P1"} for _ in range(100)]
        conn.request("POST", "/v1/events", body=json.dumps(batch),
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
        sent += len(batch)
    print(f"events: {sent / (time.perf_counter() - started):,.0f} events/s acknowledged durably "
          "(batches of 100, 1 connection, one fsync'ed file per batch)")

    # Single events from many connections at once, as browsers send them: group commit shares files.
    before = len(list(Path(os.environ.get("BENCH_LANDING", "")).rglob("*.jsonl"))) if os.environ.get(
        "BENCH_LANDING") else 0
    counts = [0] * args.threads
    started = time.perf_counter()

    def single(t: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() - started < args.seconds:
            body = {"event_id": uuid.uuid4().hex, "event_type": "page_view",
                    "occurred_at": datetime.now(UTC).isoformat(), "anonymous_id": "bench"}
            c.request("POST", "/v1/events", body=json.dumps(body),
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            answer = c.getresponse()
            answer.read()
            counts[t] += answer.status == 200

    threads = [threading.Thread(target=single, args=(t,)) for t in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    files = len(list(Path(os.environ["BENCH_LANDING"]).rglob("*.jsonl"))) - before if os.environ.get(
        "BENCH_LANDING") else 0
    print(f"events: {sum(counts) / elapsed:,.0f} single events/s acknowledged durably ({args.threads} connections; "
          f"{sum(counts):,} events in {files:,} files by group commit)")


if __name__ == "__main__":
    main()
