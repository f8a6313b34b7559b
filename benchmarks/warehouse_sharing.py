"""Sharing the warehouse between processes: waiting in line for DuckDB's file lock, against DuckLake.

    .venv/bin/python benchmarks/warehouse_sharing.py
    .venv/bin/python benchmarks/warehouse_sharing.py --ducklake-python /path/to/venv/bin/python

Waiting in line (activations/warehouse.py): how much an uncontended open costs with the wait loop,
how soon a waiting process gets the file after the holder lets go (the backoff's cost), and how
two processes that each make many small write transactions (alerts, ledger updates, a CLI
command) fare when they take turns.

DuckLake (catalog in SQLite, data in Parquet; several processes may write at once): the same two
processes writing at the same time, and what a warehouse-sized scan and write cost against the
native file. Its extension ships on PyPI (duckdb-ext-ducklake, duckdb-ext-sqlite) for DuckDB
1.4.x only; give --ducklake-python an interpreter with duckdb 1.4.x and those two packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activations.warehouse import open_when_free  # noqa: E402 - after the path is set

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print(time.time(), flush=True)
"""

# One writer process: `n` small transactions, each opening the warehouse (waiting in line), inserting
# a row and closing it, as the CLI and Dagster steps do.
TAKE_TURNS = """
import sys, time
sys.path.insert(0, sys.argv[3])
from activations.warehouse import open_when_free
path, n, started = sys.argv[1], int(sys.argv[2]), time.monotonic()
for i in range(n):
    con = open_when_free(path, wait=120, say=lambda _: None)
    con.execute("insert into writes values (?, ?)", [sys.argv[4], i])
    con.close()
print(time.monotonic() - started, flush=True)
"""

# DuckLake, run by --ducklake-python: two writer processes at once, then scan and write against the native file.
DUCKLAKE = textwrap.dedent('''
import glob, json, os, subprocess, sys, time, duckdb
folder, rows, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
extensions = glob.glob(os.path.join(os.path.dirname(duckdb.__file__), "..", "duckdb_ext", "extensions", "*", "*",
                                    "*.duckdb_extension"))
ATTACH = f"attach 'ducklake:sqlite:{folder}/catalog.sqlite' as lake (data_path '{folder}/data/')"

def lake():
    con = duckdb.connect()
    for e in extensions:
        con.load_extension(e)
    con.execute(ATTACH)
    return con

if len(sys.argv) > 4:  # a writer: n single-row transactions into its own table or the shared one
    con, table, started, errors, first = lake(), sys.argv[4], time.monotonic(), 0, ""
    for i in range(n):
        try:
            con.execute(f"insert into lake.{table} values (?, ?)", [sys.argv[5], i])
        except duckdb.Error as exc:
            errors, first = errors + 1, first or str(exc).splitlines()[0][:200]
    print(json.dumps({"seconds": time.monotonic() - started, "errors": errors, "first": first}), flush=True)
    sys.exit(0)

out = {"duckdb": duckdb.__version__}
con = lake()
con.execute("create table lake.shared (who varchar, i integer)")
for who in ("a", "b"):
    con.execute(f"create table lake.own_{who} (who varchar, i integer)")
con.close()
for label, tables in (("own_tables", ("own_a", "own_b")), ("one_table", ("shared", "shared"))):
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, __file__, folder, str(rows), str(n), t, w], stdout=subprocess.PIPE,
                              text=True, env={**os.environ}) for t, w in zip(tables, "ab")]
    results = [json.loads(p.communicate()[0]) for p in procs]
    out[label] = {"wall_seconds": time.monotonic() - started, "errors": sum(r["errors"] for r in results),
                  "first": next((r["first"] for r in results if r["first"]), "")}
con = lake()
for label, target in (("native", f"{folder}/native.duckdb"), ("ducklake", None)):
    if target:
        con.execute(f"attach '{target}' as native")
    schema = "native" if target else "lake"
    started = time.monotonic()
    con.execute(f"create table {schema}.big as select range as id, range % 1000 as k, md5(range::varchar) as v "
                f"from range({rows})")
    written = time.monotonic() - started
    started = time.monotonic()
    con.execute(f"select k, count(*), max(v) from {schema}.big group by k").fetchall()
    out[label] = {"write_seconds": written, "scan_seconds": time.monotonic() - started}
print(json.dumps(out))
''')


def handoff(path: Path, hold: float) -> float:
    """Seconds between the holder letting go and this process getting the file."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(hold)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    con = open_when_free(path, wait=120, say=lambda _: None)
    got = time.time()
    con.close()
    released = float(holder.stdout.readline())
    holder.wait()
    return got - released


def take_turns(path: Path, n: int) -> dict:
    """Two processes making `n` small write transactions each, at the same time, waiting in line."""
    con = duckdb.connect(str(path))
    con.execute("create or replace table writes (who varchar, i integer)")
    con.close()
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", TAKE_TURNS, str(path), str(n), str(ROOT), who],
                              stdout=subprocess.PIPE, text=True) for who in "ab"]
    own = [float(p.communicate()[0]) for p in procs]
    wall = time.monotonic() - started
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select count(*) from writes").fetchone()[0]
    return {"wall_seconds": wall, "per_process_seconds": own, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5, help="handoffs per hold time")
    parser.add_argument("--transactions", type=int, default=100, help="small writes per process")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the scan and write comparison")
    parser.add_argument("--ducklake-python", default=None, help="a Python with duckdb 1.4.x and duckdb-ext-ducklake")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="attiva-sharing-"))
    path = folder / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    print(f"DuckDB {duckdb.__version__}; {folder}")

    opens = []
    for _ in range(30):
        started = time.perf_counter()
        open_when_free(path, say=lambda _: None).close()
        opens.append(time.perf_counter() - started)
    print(f"uncontended open + close: median {statistics.median(opens) * 1000:.1f} ms")

    for hold in (0.2, 1.0, 3.0):
        delays = [handoff(path, hold) for _ in range(args.trials)]
        print(f"holder keeps the file {hold:.1f}s: the waiter has it {statistics.median(delays) * 1000:.0f} ms "
              f"after release (median), {max(delays) * 1000:.0f} ms at most, {args.trials} trials")

    turns = take_turns(path, args.transactions)
    print(f"two processes x {args.transactions} small write transactions, waiting in line: "
          f"{turns['wall_seconds']:.1f}s wall, {turns['rows']} rows written, no error")

    if not args.ducklake_python:
        print("DuckLake: not measured (pass --ducklake-python: its extension ships for DuckDB 1.4.x; this "
              f"interpreter has {duckdb.__version__})")
        return
    lake = folder / "lake"
    lake.mkdir()
    script = folder / "ducklake_bench.py"
    script.write_text(DUCKLAKE)
    proc = subprocess.run([args.ducklake_python, str(script), str(lake), str(args.rows), str(args.transactions)],
                          capture_output=True, text=True)
    if proc.returncode:
        print(f"DuckLake: failed: {proc.stderr.strip()[-800:]}")
        return
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"DuckLake (DuckDB {out['duckdb']}, SQLite catalog):")
    for label in ("own_tables", "one_table"):
        print(f"  two processes x {args.transactions} single-row inserts at once, {label.replace('_', ' ')}: "
              f"{out[label]['wall_seconds']:.1f}s wall, {out[label]['errors']} failed"
              + (f" (first: {out[label]['first']})" if out[label]["first"] else ""))
    for label in ("native", "ducklake"):
        print(f"  {label:<8} {args.rows:,} rows: write {out[label]['write_seconds']:.2f}s, "
              f"group-by scan {out[label]['scan_seconds']:.2f}s")


if __name__ == "__main__":
    main()
