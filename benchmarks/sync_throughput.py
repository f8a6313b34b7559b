"""The activation engine end to end: an audience in DuckDB to a destination, rows per second.

    .venv/bin/python benchmarks/sync_throughput.py [--webhook-rows 1000000] [--hubspot-rows 100000]
                                                   [--rss-rows 10000000]

- webhook: a first sync (every row an add) to the sandbox's unthrottled webhook endpoint.
  Target >= 50k rows/s.
- hubspot: contacts batch upsert at the private-app limit (190 requests / 10 s, 100 rows each).
  Target >= 95 % of the 1,900 rows/s ceiling.
- rss: peak RSS of the process running a 10M-row sync (to file export: no server holding 10M
  rows in its own memory beside it). Target <= 2 GB.

The sandbox runs in its own process (as `attiva sandbox` does), so the figures are the
engine's own: plan, read, normalize, batch, send, record.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.destinations.config import build_client, parse_destination  # noqa: E402
from activations.engine.run import run_sync  # noqa: E402
from activations.manifest import Audience, Sync  # noqa: E402
from activations.settings import SYNC_CHECKPOINT_THRESHOLD, sync_memory_limit  # noqa: E402
from activations.warehouse import connect  # noqa: E402

COLUMNS = ("customer_id", "email", "first_name", "consent_email")


def make_audience(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists audiences")
        con.execute(f"""create or replace table audiences.aud_bench as
            select 'c' || i as customer_id, 'p' || i || '@example.com' as email, 'Name' || (i % 1000) as first_name,
                   true as consent_email
            from range({rows}) t(i)""")


def sync_once(warehouse: Path, dest_type: str, options: dict, env: dict, fields: dict,
              relation: str = "audiences.aud_bench", columns: tuple[str, ...] = COLUMNS) -> dict:
    """One sync of the whole audience; returns the engine's counts and the wall time."""
    client = build_client(parse_destination(f"bench_{dest_type}", {"type": dest_type, **options}, env=env))
    audience = Audience("aud_bench", relation, "", columns, unique_columns=("customer_id",))
    sync = Sync(f"aud_bench__{dest_type}", audience, f"bench_{dest_type}", "upsert", "customer_id",
                {"email": "email"}, fields, "consent_email" if "consent_email" in columns else None)
    # As `attiva sync` and Dagster open it: DuckDB capped at ATTIVA_SYNC_MEMORY_LIMIT (1GB).
    with connect(warehouse, memory_limit=sync_memory_limit(), checkpoint_threshold=SYNC_CHECKPOINT_THRESHOLD) as con:
        started = time.perf_counter()
        result = run_sync(con, sync, client)
        seconds = time.perf_counter() - started
    client.close()
    return {"destination": dest_type, "rows": result.confirmed, "rejected": result.rejected, "seconds": seconds,
            "rows_per_second": result.confirmed / seconds, "status": result.status,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def sandbox_process(state: Path):
    """`attiva sandbox` in its own process; imported here, not at the top: drt_compare's child
    (--child-webhook) is timed from process start and has no use for the server's modules."""
    from benchmarks.sandbox_throughput import sandbox_process as start

    return start(state)


def bench_webhook(rows: int, work: Path) -> dict:
    warehouse = work / "webhook.duckdb"
    make_audience(warehouse, rows)
    with sandbox_process(work / "sandbox-webhook") as url:
        from benchmarks.sandbox_throughput import cpu_seconds

        env = {"ATTIVA_BENCH_WEBHOOK_URL": f"{url}/webhook", "ATTIVA_BENCH_WEBHOOK_TOKEN": "sandbox-webhook-token"}
        server, client = cpu_seconds(url.pid), os.times()
        result = sync_once(warehouse, "webhook", {"path": "/bench"}, env, {"first_name": "first_name"})
        after = os.times()
        # CPU seconds per million rows of each process: the steadier figure on a shared machine.
        per_million = 1e6 / max(result["rows"], 1)
        result["cpu"] = (f"CPU-s per 1M rows: engine {(after.user + after.system - client.user - client.system) * per_million:.2f}"
                         f", sandbox {(cpu_seconds(url.pid) - server) * per_million:.2f}; load {os.getloadavg()[0]:.2f}")
        return result


def bench_hubspot(rows: int, work: Path) -> dict:
    warehouse = work / "hubspot.duckdb"
    make_audience(warehouse, rows)
    with sandbox_process(work / "sandbox-hubspot") as url:
        env = {"ATTIVA_BENCH_HUBSPOT_URL": f"{url}/hubspot", "ATTIVA_BENCH_HUBSPOT_TOKEN": "sandbox-hubspot-token"}
        result = sync_once(warehouse, "hubspot", {"plan": "private_app"}, env, {"firstname": "first_name"})
    result["share_of_ceiling"] = result["rows_per_second"] / 1900
    return result


def bench_rss(rows: int, work: Path) -> dict:
    """The 10M-row sync in a fresh process, so its peak RSS is the sync's alone."""
    warehouse = work / "rss.duckdb"
    make_audience(warehouse, rows)
    child = subprocess.run([sys.executable, __file__, "--child-file-export", str(warehouse), str(work / "exports")],
                           capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhook-rows", type=int, default=1_000_000)
    parser.add_argument("--hubspot-rows", type=int, default=100_000)
    parser.add_argument("--rss-rows", type=int, default=10_000_000)
    parser.add_argument("--only", choices=("webhook", "hubspot", "rss"))
    parser.add_argument("--child-file-export", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-webhook", nargs=3, metavar=("WAREHOUSE", "BASE_URL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_webhook:  # drt_compare.py: the same table drt reads, to the same endpoint
        warehouse, base, path = args.child_webhook
        env = {"ATTIVA_BENCH_WEBHOOK_URL": f"{base}/webhook", "ATTIVA_BENCH_WEBHOOK_TOKEN": "sandbox-webhook-token"}
        print(json.dumps(sync_once(Path(warehouse), "webhook", {"path": path}, env,
                                   {"first_name": "first_name", "score": "score"}, relation="audience",
                                   columns=("customer_id", "email", "first_name", "score"))))
        return 0
    if args.child_file_export:
        warehouse, folder = args.child_file_export
        os.environ["ATTIVA_DATA"] = str(Path(folder).parent)
        print(json.dumps(sync_once(Path(warehouse), "file_export", {"folder": folder, "format": "parquet"}, {},
                                   {"first_name": "first_name"})))
        return 0
    work = Path(tempfile.mkdtemp(prefix="attiva-sync-bench-"))
    try:
        return run_benchmarks(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # audiences of 1M-10M rows: 150 MB and more per run


def run_benchmarks(args: argparse.Namespace, work: Path) -> int:
    runs = {"webhook": lambda: bench_webhook(args.webhook_rows, work),
            "hubspot": lambda: bench_hubspot(args.hubspot_rows, work),
            "rss": lambda: bench_rss(args.rss_rows, work)}
    for name, bench in runs.items():
        if args.only and name != args.only:
            continue
        r = bench()
        line = (f"{name:<8} {r['rows']:>11,} rows in {r['seconds']:6.1f} s = {r['rows_per_second']:>9,.0f} rows/s, "
                f"peak RSS {r['peak_rss_mb']:,.0f} MB, {r['rejected']} rejected ({r['status']})")
        if "cpu" in r:
            line += f"; {r['cpu']}"
        if "share_of_ceiling" in r:
            line += f", {r['share_of_ceiling']:.1%} of HubSpot's 1,900 rows/s"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
