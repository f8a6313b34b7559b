"""Triggered messages end to end: N due occurrences planned, decided, rendered (with
recommendations), marked in the ledger and delivered over SMTP to the sandbox's mail server.

    .venv/bin/python benchmarks/messaging_throughput.py [--messages 100000] [--concurrency 8]

Target (triggered-messages issue): >= 500 messages/s. The SMTP server runs in its own process
(`attiva sandbox --smtp-port`), as it would on a real network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.messaging.channels import SmtpChannel  # noqa: E402
from activations.messaging.policy import Caps, Settings, Step, Trigger  # noqa: E402
from activations.messaging.send import run_pass  # noqa: E402
from activations.messaging.templates import Templates  # noqa: E402
from benchmarks.sandbox_throughput import free_port, sandbox_process  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
COLUMNS = ("trigger_key", "customer_id", "occurred_at", "exit_reason", "product_id", "product_name", "discount_pct",
           "current_price")


def make_warehouse(path: Path, n: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema triggers")
        con.execute(f"""create table marts.customers as
            select 'c' || i as customer_id, 'p' || i || '@example.it' as email, 'Nome' || (i % 500) as first_name,
                   'Cognome' as last_name, 'Milano' as city, 'IT' as country, 'Europe/Rome' as timezone,
                   true as email_marketable
            from range({n}) t(i)""")
        con.execute("""create table marts.products as select 'P' || i as product_id, 'Prodotto ' || i as product_name,
                       (5 + i % 40)::double as price from range(200) t(i)""")
        con.execute(f"""create table marts.customer_recommendations as
            select 'c' || i as customer_id, r as recommendation_rank, 'P' || ((i + r * 7) % 200) as product_id,
                   1.0 / r as score, 'goes_with_purchases' as reason
            from range({n}) t(i), range(1, 4) s(r)""")
        con.execute(f"""create table triggers.trg_bench as
            select 'k' || i as trigger_key, 'c' || i as customer_id,
                   timestamp '{(NOW - timedelta(hours=1)).replace(tzinfo=None)}' as occurred_at,
                   cast(null as varchar) as exit_reason, 'P' || (i % 200) as product_id,
                   'Prodotto ' || (i % 200) as product_name, 20.0 as discount_pct, 9.9 as current_price
            from range({n}) t(i)""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="attiva-messaging-bench-"))
    warehouse = work / "warehouse.duckdb"
    make_warehouse(warehouse, args.messages)
    smtp_port = free_port()
    with sandbox_process(work / "sandbox", smtp_port=smtp_port):
        trigger = Trigger("trg_bench", "triggers.trg_bench", "favourite_on_promotion", "email", "email_marketable",
                          True, 50, 0.0, timedelta(days=2), None, (Step(1, "favourite_on_promotion", timedelta(0)),),
                          COLUMNS)
        channel = SmtpChannel("127.0.0.1", smtp_port, pool_size=args.concurrency, from_email="ciao@emporionove.it",
                              from_name="Emporio Nove")
        with duckdb.connect(str(warehouse)) as con:
            started = time.perf_counter()
            report = run_pass(con, [trigger], {"email": channel}, Templates(), Settings(Caps(None, None), None),
                              NOW, concurrency=args.concurrency)
            seconds = time.perf_counter() - started
        channel.close()
    print(report)
    print(f"{report.sent:,} messages planned, rendered and accepted by SMTP in {seconds:.1f} s = "
          f"{report.sent / seconds:,.0f} messages/s (target >= 500/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
