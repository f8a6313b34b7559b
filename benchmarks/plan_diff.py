"""The sync plan's diff at scale: a 10M-row audience (2 % added, 2 % removed, 5 % changed)
against its snapshot, timed beside a bare DuckDB full outer join of the same two tables.

    .venv/bin/python benchmarks/plan_diff.py --rows 10000000

Targets (activation engine issue): <= 2.5 s on 2 cores and <= 2.5x the bare join.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from activations.engine.plan import plan_sync, row_hash_sql
from activations.engine.state import ensure_state
from activations.manifest import Audience, Sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    n = args.rows
    con = duckdb.connect(str(Path(tempfile.mkdtemp()) / "warehouse.duckdb"))
    con.execute("create schema audiences")
    con.execute(f"""create table audiences.aud_bench as
        select 'c' || i as customer_id, 'p' || i || '@x.it' as email, 'Name' || (i % 1000) as first_name,
               true as consent_email
        from range({int(n * 0.02)}, {n + int(n * 0.02)}) t(i)""")  # first 2 % removed, 2 % new at the end
    sync = Sync("aud_bench__webhook", Audience("aud_bench", "audiences.aud_bench", "",
                ("customer_id", "email", "first_name", "consent_email"), unique_columns=("customer_id",)),
                "webhook", "mirror", "customer_id",
                {"email": "email"}, {"name": "first_name"}, "consent_email")
    ensure_state(con)
    # The snapshot as the last run left it: the same hash the plan computes, 5 % of rows changed since.
    con.execute(f"""insert into activation.sync_snapshots (sync_name, row_key, row_hash, confirmed_at)
        select '{sync.name}', a.customer_id,
               case when a.i % 20 = 0 then 'changed' else {row_hash_sql(con, sync)} end, now()
        from (select 'c' || i as customer_id, 'p' || i || '@x.it' as email, 'Name' || (i % 1000) as first_name, i
              from range(0, {n}) t(i)) as a""")
    started = time.perf_counter()
    con.execute("""select count(*) from audiences.aud_bench a full outer join activation.sync_snapshots s
                    on a.customer_id = s.row_key""").fetchone()
    bare = time.perf_counter() - started
    started = time.perf_counter()
    con.execute(f"select max({row_hash_sql(con, sync)}) from audiences.aud_bench").fetchone()
    hashing = time.perf_counter() - started
    started = time.perf_counter()
    plan = plan_sync(con, sync, datetime.now(UTC))
    planned = time.perf_counter() - started
    print(plan)
    print(f"bare full outer join {bare:.2f} s | row hash alone {hashing:.2f} s | plan {planned:.2f} s "
          f"= {planned / bare:.1f}x the bare join (targets: <= 2.5 s, <= 2.5x)")


if __name__ == "__main__":
    main()
