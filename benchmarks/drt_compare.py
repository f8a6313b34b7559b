"""The same audience synced by drt-core, a reverse-ETL CLI, to the sandbox's webhook.

The competitor side of "1M rows, Attiva vs drt-core, side by side" (target: Attiva at
least 3x drt's rows/s). A DuckDB file holds the audience table (customer_id, email,
first_name, score); drt-core reads it and POSTs it to ``{sandbox}/webhook/<path>``;
the sandbox's state then has to hold every row.

drt-core lives in its own venv, ``.venv-drt`` at the repo root, created on first use
(``python3.11 -m venv`` + ``pip install drt-core[duckdb]``, DuckDB pinned to the version
this project uses so both read the same file), so it never touches the project's
dependencies. How drt is set up (see :func:`write_drt_project`):

- ``~/.drt/profiles.yml`` (``HOME`` points into the work folder): a ``duckdb`` profile on the file.
- ``drt_project.yml``: the project, using that profile.
- ``syncs/models/audience.sql``: the model, the table plus ``key`` (the webhook's row key),
  made by DuckDB rather than by a per-row template, drt's fastest way to add a column.
- ``syncs/audience_webhook.yml``: a ``rest_api`` destination in ``body_mode: batch``, whose
  ``batch_template`` renders ``{"rows": [...]}``, ``max_records_per_request`` and the
  engine's ``batch_size`` both 10,000 (the webhook's limit), drt's pacing turned off
  (``requests_per_second: 0``; its default is 10 requests/s).
- a second setup reads 100,000 rows at a time (the engine's ``batch_size`` and the profile's
  ``fetch_size``), still 10,000 rows a request: drt opens an HTTP client (with a fresh TLS
  context, about 30 ms) per engine batch, so this halves its CPU time and doubles its
  rows/s. It is drt at its best here (reads of 250,000 or 1,000,000 rows are no faster).

drt cannot sign a body (its REST auth is Bearer, API key, Basic or OAuth2), so the
sandbox is started with ``webhook_require_signature=False``; Attiva's posts are signed
and still checked. The figure is the wall time of ``drt run`` (CLI start-up included,
about a second; drt's own ``total_duration_seconds`` is reported beside it).

Attiva's side is the engine (``run_sync``, as ``attiva sync`` runs it) in a process of its own
(``sync_throughput.py --child-webhook``), timed from process start like drt's, on a fresh copy
of the same audience file each run: a first sync, every row sent, as drt's full sync sends it.

The sandbox runs in its own process, as ``attiva sandbox`` does, and its webhook state is
reset before each tool's run, so both start from an empty endpoint (a state already holding
the other tool's million rows makes each of the sandbox's state writes twice as long).
Each round runs both drt setups, then Attiva, then a bare read-and-post: the same table read and
posted by Attiva's webhook client with nothing else (no plan, checks or ledger), the ceiling
any tool can reach against this sandbox on this machine (``--runs``, default 3). Beside each wall time: the CPU
seconds of the tool's process(es) and of the sandbox during that run, and the load average
(``/proc/loadavg``); on a shared machine CPU seconds per million rows are the steadier figure.

    .venv/bin/python benchmarks/drt_compare.py [--rows 1000000] [--batch 10000] [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sandbox_throughput import cpu_seconds, sandbox_process  # noqa: E402

DRT_VENV = ROOT / ".venv-drt"
DRT_VERSION = "1.2.1"  # the version measured; pinned so figures stay comparable
TABLE = "audience"
COLUMNS = ("customer_id", "email", "first_name", "score")
WEBHOOK_PATH = "/drt/audience"
BATCH = 10_000  # the sandbox webhook's default limit per request, as Attiva sends
SYNC_NAME = "audience_webhook"


# ---- the audience ---------------------------------------------------------------------------------


def make_audience(path: Path, rows: int) -> Path:
    """A DuckDB file with table ``audience`` of ``rows`` rows; kept if it already has that many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        present = con.execute(
            "select count(*) from information_schema.tables where table_name = ?", [TABLE]
        ).fetchone()[0]
        if present and con.execute(f"select count(*) from {TABLE}").fetchone()[0] == rows:
            return path
        con.execute(
            f"""
            create or replace table {TABLE} as
            select i as customer_id,
                   'user' || i || '@example.com' as email,
                   (['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Linus'])[1 + i % 8]
                       as first_name,
                   ((hash(i) % 100000) / 1000.0)::double as score
            from range(1, ? + 1) t(i)
            """,
            [rows],
        )
    return path


# ---- drt-core -------------------------------------------------------------------------------------


def ensure_drt() -> Path:
    """The ``drt`` executable of ``.venv-drt``, creating the venv and installing drt-core if missing."""
    drt = DRT_VENV / "bin" / "drt"
    if drt.exists():
        return drt
    python = "python3.11"
    print(f"creating {DRT_VENV} and installing drt-core {DRT_VERSION} ...", flush=True)
    subprocess.run([python, "-m", "venv", str(DRT_VENV)], check=True)
    duckdb_pin = f"duckdb=={importlib.metadata.version('duckdb')}"  # reads the file this process writes
    subprocess.run(
        [str(DRT_VENV / "bin" / "pip"), "install", "-q", f"drt-core[duckdb]=={DRT_VERSION}", duckdb_pin],
        check=True,
    )
    return drt


def write_drt_project(project: Path, home: Path, database: Path, url: str, batch: int = BATCH,
                      as_shipped: bool = False, read_batch: int | None = None) -> None:
    """The drt project syncing ``audience`` to ``url``, and its profile under ``home/.drt``.

    ``as_shipped``: drt's own defaults (one request per row, 10 requests/s, batches of 100),
    with only the body shaped as the webhook expects (``{"rows": [row]}``): what a user gets
    before tuning drt. ``read_batch``: rows drt reads and hands to the destination at a time
    (default ``batch``), each handful split into requests of ``batch`` rows.
    """
    read_batch = read_batch or batch
    (home / ".drt").mkdir(parents=True, exist_ok=True)
    (home / ".drt" / "profiles.yml").write_text(
        f"bench:\n  type: duckdb\n  database: {json.dumps(str(database))}\n  fetch_size: {read_batch}\n"
    )
    (project / "syncs" / "models").mkdir(parents=True, exist_ok=True)
    (project / "drt_project.yml").write_text("name: attiva_drt_compare\nversion: '0.1'\nprofile: bench\n")
    (project / "syncs" / "models" / f"{TABLE}.sql").write_text(
        f"select cast(customer_id as varchar) as key, {', '.join(COLUMNS)} from {TABLE}\n"
    )
    if as_shipped:  # a request per row; drt's default pacing and batches
        description, body, sync = "drt's defaults", """  body_template: '{"rows": [{{ row | tojson_safe }}]}'""", ""
    else:
        description = f"{batch} rows a request"
        body = f"""  body_mode: batch
  batch_template: '{{"rows": {{{{ rows | tojson_safe }}}}}}'
  max_records_per_request: {batch}"""
        sync = f"""  batch_size: {read_batch}
  rate_limit:
    requests_per_second: 0
"""
    (project / "syncs" / f"{SYNC_NAME}.yml").write_text(
        f"""name: {SYNC_NAME}
description: "The benchmark audience to the sandbox webhook, {description}"
model: ref('{TABLE}')
destination:
  type: rest_api
  url: {json.dumps(url)}
  method: POST
  headers:
    Content-Type: application/json
{body}
sync:
  mode: full
  on_error: fail
{sync}"""
    )


def drt_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRT_")}
    env.update({"HOME": str(home), "DO_NOT_TRACK": "1", "DRT_TELEMETRY": "0", "NO_COLOR": "1"})
    return env


def run_drt(rows: int, base_url: str, workdir: Path, batch: int = BATCH, as_shipped: bool = False,
            sandbox_pid: int | None = None, read_batch: int | None = None) -> dict[str, Any]:
    """Sync ``rows`` audience rows to ``{base_url}/webhook/drt/audience`` with drt-core; check the sandbox got them.

    ``base_url`` is a running sandbox that accepts unsigned webhook posts
    (``webhook_require_signature=False``). The audience is ``workdir/audience-<rows>.duckdb``
    (made if missing); drt's project and home go under ``workdir``. Returns the figures:
    tool, rows, seconds (wall time of ``drt run``), rows_per_second, drt_seconds (drt's own
    figure), received and stored (by the sandbox endpoint), client_cpu and sandbox_cpu (CPU
    seconds of drt's process and, given ``sandbox_pid``, of the sandbox during the run).
    """
    workdir = Path(workdir).resolve()
    drt = ensure_drt()
    database = make_audience(workdir / f"audience-{rows}.duckdb", rows)
    project, home = workdir / "drt-project", workdir / "drt-home"
    path = WEBHOOK_PATH + ("-as-shipped" if as_shipped else "")
    write_drt_project(project, home, database, f"{base_url}/webhook{path}", batch, as_shipped, read_batch)
    before = webhook_endpoint_counts(base_url, path)

    with _measured(sandbox_pid) as cost:
        done = subprocess.run(
            [str(drt), "run", "--select", SYNC_NAME, "--output", "json", "--quiet"],
            cwd=project,
            env=drt_env(home),
            capture_output=True,
            text=True,
        )
    seconds = cost["seconds"]
    if done.returncode != 0:
        raise RuntimeError(f"drt run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = _json_tail(done.stdout)
    synced = sum(int(s.get("rows_synced", 0)) for s in report.get("syncs", []))

    after = webhook_endpoint_counts(base_url, path)
    received = after["received"] - before["received"]
    if after["stored"] != rows or received < rows or synced != rows:
        raise RuntimeError(
            f"the sandbox does not hold the audience: {rows} rows, drt says {synced} synced, "
            f"endpoint received {received} and holds {after['stored']}"
        )
    sample = after["first"]
    if (
        sample is None
        or set(sample) != {"key", *COLUMNS}
        or sample["email"] != f"user{sample['customer_id']}@example.com"
    ):
        raise RuntimeError(f"unexpected row at the sandbox: {sample}")
    return {
        "tool": f"drt-core {DRT_VERSION}" + (" as shipped" if as_shipped else f", {read_batch or batch:,} reads"),
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds,
        "drt_seconds": report.get("total_duration_seconds"),
        "received": received,
        "stored": after["stored"],
        **cost,
    }


class _measured:
    """Wall time, the CPU seconds of the child processes waited for meanwhile, the sandbox's CPU
    seconds (given its pid) and the 1-minute load average at the end."""

    def __init__(self, sandbox_pid: int | None) -> None:
        self.pid = sandbox_pid
        self.figures: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.sandbox = cpu_seconds(self.pid) if self.pid else None
        self.started = time.perf_counter()
        return self.figures

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self.started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.figures.update(
            seconds=seconds,
            client_cpu=children.ru_utime + children.ru_stime - self.children.ru_utime - self.children.ru_stime,
            sandbox_cpu=cpu_seconds(self.pid) - self.sandbox if self.pid else None,
            load=float(Path("/proc/loadavg").read_text().split()[0]),
        )


def _json_tail(stdout: str) -> dict[str, Any]:
    """drt's ``--output json`` document (the last JSON object printed)."""
    start = stdout.find('{\n  "run_id"')
    try:
        return json.loads(stdout[start:] if start >= 0 else stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"drt printed no JSON report:\n{stdout[-2000:]}") from exc


# ---- checking the sandbox -------------------------------------------------------------------------

_ROW = b'":{"key":'  # one stored row: "<key>":{"key":...} (the rows drt sends start with key)
_END = re.compile(rb'\}\},"(?:/[^"\\]*":\{"received":|requests":\{)')  # after this endpoint's rows


def webhook_endpoint_counts(base_url: str, path: str, chunk: int = 1 << 20) -> dict[str, Any]:
    """``received`` (rows posted), ``stored`` (distinct keys held) and the ``first`` stored row of one path.

    Reads ``GET /_sandbox/state/webhook`` as a stream, counting rows without parsing
    them: at 1M rows the state is about 100 MB of JSON (every stored row).
    """
    start = re.compile(rb'"' + re.escape(json.dumps(path)[1:-1].encode()) + rb'":\{"received":(\d+),"rows":\{')
    received, stored, first = 0, 0, None
    inside, carry = False, b""
    with urllib.request.urlopen(f"{base_url}/_sandbox/state/webhook", timeout=600) as answer:
        while True:
            data = answer.read(chunk)
            buf = carry + data
            if not inside:
                found = start.search(buf)
                if found is None:
                    if not data:
                        break  # the path has received nothing
                    carry = buf[-4096:]
                    continue
                received, inside, buf = int(found[1]), True, buf[found.end() :]
            if first is None and (at := buf.find(_ROW)) >= 0 and (close := buf.find(b"}", at)) >= 0:
                first = json.loads(buf[at + 2 : close + 1])
            end = _END.search(buf)
            if end is not None:
                stored += buf[: end.start()].count(_ROW)
                break
            if not data:
                raise RuntimeError("the sandbox state ended inside the endpoint's rows")
            split = max(0, len(buf) - 4096)  # rows starting before split are counted now, the rest next time
            stored += buf[: split + len(_ROW) - 1].count(_ROW)
            carry = buf[split:]
    return {"received": received, "stored": stored, "first": first}


# ---- side by side ---------------------------------------------------------------------------------


def run_attiva(rows: int, base_url: str, workdir: Path, sandbox_pid: int | None = None) -> dict[str, Any]:
    """Attiva's engine syncing the same table to the same sandbox endpoint, in its own process as
    drt is; timed from process start, as drt's run is. Each run syncs a fresh copy of the audience
    file (the engine keeps its ledger in the warehouse: a second run would find nothing to send)."""
    path = "/attiva/audience"
    warehouse = fresh_warehouse(workdir / f"audience-{rows}.duckdb", workdir / f"attiva-{rows}.duckdb")
    with _measured(sandbox_pid) as cost:
        child = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "sync_throughput.py"), "--child-webhook",
             str(warehouse), base_url, path],
            capture_output=True, text=True, cwd=ROOT, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"attiva's sync failed:\n{child.stderr[-2000:]}")
    engine = json.loads(child.stdout.strip().splitlines()[-1])
    counts = webhook_endpoint_counts(base_url, path)
    if engine["rows"] != rows or counts["stored"] != rows:
        raise RuntimeError(f"attiva confirmed {engine['rows']:,} of {rows:,} rows; the endpoint holds "
                           f"{counts['stored']:,}")
    sample = counts["first"]
    if sample is None or sample.get("email") != f"user{sample.get('key')}@example.com":
        raise RuntimeError(f"unexpected row at the sandbox: {sample}")
    return {"tool": "attiva (engine)", "rows": rows, "rows_per_second": rows / cost["seconds"],
            "engine_seconds": engine["seconds"], "received": counts["received"], "stored": counts["stored"], **cost}


def run_bare_post(rows: int, base_url: str, workdir: Path, sandbox_pid: int | None = None) -> dict[str, Any]:
    """The ceiling on this machine: the same table read and POSTed by Attiva's webhook client, 4
    requests at a time, and nothing else (no plan, no identifier checks, no ledger, no snapshot).
    No sync tool can beat it here; it shows how much of the time the sandbox and the wire take."""
    path = "/bare/audience"
    with _measured(sandbox_pid) as cost:
        child = subprocess.run([sys.executable, __file__, "--child-bare-post",
                                str(workdir / f"audience-{rows}.duckdb"), base_url, path],
                               capture_output=True, text=True, cwd=ROOT, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"the bare read-and-post failed:\n{child.stderr[-2000:]}")
    counts = webhook_endpoint_counts(base_url, path)
    if int(child.stdout.strip().splitlines()[-1]) != rows or counts["stored"] != rows:
        raise RuntimeError(f"bare read-and-post: the endpoint holds {counts['stored']:,} of {rows:,} rows")
    return {"tool": "bare read-and-post (ceiling)", "rows": rows, "rows_per_second": rows / cost["seconds"], **cost}


def bare_post(warehouse: str, base_url: str, path: str) -> int:
    """--child-bare-post: read the audience and post it, 10,000 rows a request; rows confirmed."""
    from concurrent.futures import ThreadPoolExecutor

    import polars as pl

    from activations.destinations.config import build_client, parse_destination

    client = build_client(parse_destination("bare", {"type": "webhook", "path": path}, env={
        "ATTIVA_BARE_URL": f"{base_url}/webhook", "ATTIVA_BARE_TOKEN": "sandbox-webhook-token"}))
    query = f"select cast(customer_id as varchar) as _key, {', '.join(COLUMNS)} from {TABLE}"
    with duckdb.connect(warehouse, read_only=True) as con, ThreadPoolExecutor(4) as pool:
        sends = [pool.submit(client.send, "upsert", chunk.slice(start, BATCH))
                 for batch in con.sql(query).to_arrow_reader(100_000)
                 for chunk in [pl.from_arrow(batch)] for start in range(0, chunk.height, BATCH)]
        return sum(result.ok for send in sends for result in send.result())


def fresh_warehouse(audience: Path, copy: Path) -> Path:
    """``audience`` copied to ``copy``, without any sync state (a workdir used before may hold some)."""
    shutil.copyfile(audience, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("drop schema if exists activation cascade")
    return copy


def reset_webhook(base_url: str) -> None:
    """Empty the sandbox's webhook endpoints (and their state file)."""
    request = urllib.request.Request(f"{base_url}/_sandbox/reset", data=b'{"destination": "webhook"}',
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120):
        pass


def print_results(results: list[dict[str, Any]]) -> None:
    print(f"{'round':>5} {'tool':<30} {'rows':>10} {'seconds':>8} {'rows/s':>9} "
          f"{'tool CPU-s':>10} {'sandbox CPU-s':>13} {'load':>5}")
    for r in results:
        sandbox = f"{r['sandbox_cpu']:.2f}" if r.get("sandbox_cpu") is not None else "-"
        print(f"{r.get('round', ''):>5} {r['tool']:<30} {r['rows']:>10,} {r['seconds']:>8.2f} "
              f"{r['rows_per_second']:>9,.0f} {r['client_cpu']:>10.2f} {sandbox:>13} {r['load']:>5.2f}")
    tools = {r["tool"]: [x for x in results if x["tool"] == r["tool"]] for r in results if "round" in r}
    for tool, runs in tools.items():
        per_million = 1e6 / runs[0]["rows"]
        sandbox = [r["sandbox_cpu"] for r in runs if r.get("sandbox_cpu") is not None]
        own = [r["drt_seconds"] for r in runs if r.get("drt_seconds") is not None]
        print(f"{tool:<30} median {statistics.median(r['rows_per_second'] for r in runs):>9,.0f} rows/s "
              f"(of {len(runs)}); CPU-s per 1M rows: tool "
              f"{statistics.median(r['client_cpu'] for r in runs) * per_million:.2f}"
              + (f", sandbox {statistics.median(sandbox) * per_million:.2f}" if sandbox else "")
              + (f"; drt's own figure {statistics.median(own):.2f} s, the rest is CLI start-up" if own else ""))
    attiva = next((runs for tool, runs in tools.items() if tool.startswith("attiva")), None)
    ceiling = next((runs for tool, runs in tools.items() if tool.startswith("bare")), None)
    for tool, runs in tools.items():
        if tool.startswith("drt"):
            drt = statistics.median(r["rows_per_second"] for r in runs)
            if attiva:
                print(f"attiva / {tool}: {statistics.median(r['rows_per_second'] for r in attiva) / drt:.1f}x "
                      "(medians; target >= 3x)")
            if ceiling:
                print(f"  ceiling / {tool}: {statistics.median(r['rows_per_second'] for r in ceiling) / drt:.1f}x "
                      "(the most any tool could reach here)")
    shipped = next((r for r in results if "as shipped" in r["tool"]), None)
    if shipped is not None and attiva:
        print(f"attiva / drt as shipped: {attiva[0]['rows_per_second'] / shipped['rows_per_second']:,.0f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-bare-post", nargs=3, metavar=("WAREHOUSE", "BASE_URL", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=BATCH, help="rows per request")
    parser.add_argument("--drt-read-batch", type=int, default=100_000,
                        help="rows drt reads at a time in its second setup (default 100000; 0 skips it)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of drt then Attiva (default 3)")
    parser.add_argument("--workdir", type=Path, help="keep the DuckDB file and drt project here (default: a temp dir)")
    parser.add_argument("--as-shipped-rows", type=int, default=300,
                        help="rows for drt with its own defaults (10 requests/s, a row each); 0 skips it")
    args = parser.parse_args(argv)
    if args.child_bare_post:
        print(bare_post(*args.child_bare_post))
        return 0

    with tempfile.TemporaryDirectory(prefix="drt-compare-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        make_audience(workdir / f"audience-{args.rows}.duckdb", args.rows)
        results: list[dict[str, Any]] = []
        with sandbox_process(Path(tmp) / "sandbox", webhook_unsigned=True) as base:
            for round_ in range(1, args.runs + 1):
                runs = [lambda: run_drt(args.rows, base, workdir, args.batch, sandbox_pid=base.pid)]
                if args.drt_read_batch:
                    runs.append(lambda: run_drt(args.rows, base, workdir, args.batch, sandbox_pid=base.pid,
                                                read_batch=args.drt_read_batch))
                runs.append(lambda: run_attiva(args.rows, base, workdir, sandbox_pid=base.pid))
                runs.append(lambda: run_bare_post(args.rows, base, workdir, sandbox_pid=base.pid))
                for run in runs:
                    reset_webhook(base)  # each tool starts from an empty endpoint
                    results.append({**run(), "round": round_})
                    r = results[-1]
                    print(f"  round {round_}: {r['tool']} {r['rows_per_second']:,.0f} rows/s (load {r['load']:.2f})",
                          file=sys.stderr, flush=True)
            if args.as_shipped_rows:
                reset_webhook(base)
                results.append(run_drt(args.as_shipped_rows, base, workdir, as_shipped=True, sandbox_pid=base.pid))
        print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
