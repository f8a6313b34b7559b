"""A HubSpot sync with its list under 429s and 5xx: rows/s, time paused, contacts written twice.

    .venv/bin/python benchmarks/hubspot_rate_limits.py [--rows 20000] [--rate-limits 0.03] [--errors 0.03]

One sync (upsert into the sync's MANUAL list) to the sandbox's HubSpot, run in its own process,
at the private-app limit (190 requests / 10 s), while the sandbox answers a share of requests
with HubSpot's 429 TEN_SECONDLY_ROLLING (as when other apps share the portal) and with 502s.
Prints the engine's rows/s, the seconds it paused on rate limits, the rows it re-sent, and the
requests the portal served (each one counts against its 10 s and daily limits).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.destinations.config import build_client, parse_destination  # noqa: E402
from activations.engine.run import run_sync  # noqa: E402
from activations.manifest import Audience, Sync  # noqa: E402
from activations.warehouse import connect  # noqa: E402
from benchmarks.sandbox_throughput import sandbox_process  # noqa: E402


def post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def served(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_sandbox/state/hubspot", timeout=60) as answer:
        return json.load(answer)["requests"]["responses"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rate-limits", type=float, default=0.03, help="share of requests answered 429")
    parser.add_argument("--errors", type=float, default=0.03, help="share of requests answered 502")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        warehouse = work / "hubspot.duckdb"
        with duckdb.connect(str(warehouse)) as con:
            con.execute("create schema audiences")
            con.execute(f"""create table audiences.aud_bench as select 'c' || i as customer_id,
                            'p' || i || '@example.com' as email, 'Name' || i as first_name from range({args.rows}) t(i)""")
        with sandbox_process(work / "sandbox") as url:
            post(f"{url}/_sandbox/faults", {"destination": "hubspot", "rate_limit_rate": args.rate_limits,
                                            "error_rate": args.errors, "seed": 7})
            env = {"ATTIVA_BENCH_HUBSPOT_URL": f"{url}/hubspot", "ATTIVA_BENCH_HUBSPOT_TOKEN": "sandbox-hubspot-token"}
            config = parse_destination("bench_hubspot", {"type": "hubspot", "plan": "private_app"}, env=env)
            client = build_client(config.for_sync({"list": "Attiva bench"}))
            audience = Audience("aud_bench", "audiences.aud_bench", "", ("customer_id", "email", "first_name"),
                                unique_columns=("customer_id",))
            sync = Sync("aud_bench__hubspot", audience, "bench_hubspot", "mirror", "customer_id", {"email": "email"},
                        {"firstname": "first_name"}, None)
            with connect(warehouse) as con:
                started = time.perf_counter()
                result = run_sync(con, sync, client)
                seconds = time.perf_counter() - started
            client.close()
            answers = served(url)
    requests, rate = sum(answers.values()), result.confirmed / seconds
    print(f"hubspot, {args.rows:,} rows, {args.rate_limits:.0%} 429s and {args.errors:.0%} 502s: {result.status}, "
          f"{result.confirmed:,} confirmed in {seconds:.1f}s = {rate:,.0f} rows/s, {rate / 950:.0%} of the 950 rows/s "
          f"ceiling with a list (190 requests / 10 s, two a batch); paused {result.paused_seconds:.1f}s on rate "
          f"limits; {result.resent:,} rows re-sent; {requests:,} requests served {dict(sorted(answers.items()))}")

if __name__ == "__main__":
    main()
