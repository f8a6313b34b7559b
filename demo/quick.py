"""`attiva demo`: the whole pipeline on one machine, from synthetic data to audiences.

Idempotent: data is generated only when the landing folder is empty, ingestion loads
only new files, and dbt's incremental models only read what is new.
"""

from __future__ import annotations

import time

from activations import settings


def run_demo(customers: int = 100_000, seed: int = 42) -> int:
    """Generate (first run only), ingest, build, summarize. Returns a process exit code."""
    from activations.build import build_warehouse
    from activations.ingest import load_landing
    from activations.summary import summarize
    from generator import generate

    landing, warehouse, as_of = settings.landing_path(), settings.warehouse_path(), settings.as_of()
    started = time.monotonic()
    if not landing.exists() or not any(landing.rglob("*.*")):
        print(f"==> generating {customers:,} customers into {landing}")
        print(generate(customers=customers, seed=seed, out=landing, as_of=as_of))
    else:
        print(f"==> landing folder {landing} already has files: not generating")
    print(f"==> ingesting new landing files into {warehouse}")
    report = load_landing(landing, warehouse)
    print(report)
    print("==> building the warehouse (dbt build: models + tests)")
    result = build_warehouse(as_of=as_of, warehouse=warehouse)
    print(result)
    if not result.ok:
        return 1
    print("==> what the warehouse holds")
    print(summarize(warehouse))
    print(f"\ndone in {time.monotonic() - started:.0f}s. The warehouse is {warehouse} (schemas raw, staging, "
          f"intermediate, marts, audiences); `make dev` opens the Dagster UI on http://127.0.0.1:{settings.dagster_port()}.")
    return 0 if not report.failed_files else 1
