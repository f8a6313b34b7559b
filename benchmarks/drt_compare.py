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

drt cannot sign a body (its REST auth is Bearer, API key, Basic or OAuth2), so the
sandbox is started with ``webhook_require_signature=False``; Attiva's posts are signed
and still checked. The figure is the wall time of ``drt run`` (CLI start-up included,
about a second; drt's own ``total_duration_seconds`` is reported beside it).

    .venv/bin/python benchmarks/drt_compare.py [--rows 1000000] [--batch 10000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
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

from activations.sandbox import running_sandbox  # noqa: E402

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
                      as_shipped: bool = False) -> None:
    """The drt project syncing ``audience`` to ``url``, and its profile under ``home/.drt``.

    ``as_shipped``: drt's own defaults (one request per row, 10 requests/s, batches of 100),
    with only the body shaped as the webhook expects (``{"rows": [row]}``): what a user gets
    before tuning drt.
    """
    (home / ".drt").mkdir(parents=True, exist_ok=True)
    (home / ".drt" / "profiles.yml").write_text(
        f"bench:\n  type: duckdb\n  database: {json.dumps(str(database))}\n  fetch_size: {batch}\n"
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
        sync = f"""  batch_size: {batch}
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


def run_drt(rows: int, base_url: str, workdir: Path, batch: int = BATCH, as_shipped: bool = False) -> dict[str, Any]:
    """Sync ``rows`` audience rows to ``{base_url}/webhook/drt/audience`` with drt-core; check the sandbox got them.

    ``base_url`` is a running sandbox that accepts unsigned webhook posts
    (``webhook_require_signature=False``). The audience is ``workdir/audience-<rows>.duckdb``
    (made if missing); drt's project and home go under ``workdir``. Returns the figures:
    tool, rows, seconds (wall time of ``drt run``), rows_per_second, drt_seconds (drt's own
    figure), received and stored (by the sandbox endpoint).
    """
    workdir = Path(workdir).resolve()
    drt = ensure_drt()
    database = make_audience(workdir / f"audience-{rows}.duckdb", rows)
    project, home = workdir / "drt-project", workdir / "drt-home"
    path = WEBHOOK_PATH + ("-as-shipped" if as_shipped else "")
    write_drt_project(project, home, database, f"{base_url}/webhook{path}", batch, as_shipped)
    before = webhook_endpoint_counts(base_url, path)

    started = time.perf_counter()
    done = subprocess.run(
        [str(drt), "run", "--select", SYNC_NAME, "--output", "json", "--quiet"],
        cwd=project,
        env=drt_env(home),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
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
        "tool": f"drt-core {DRT_VERSION}" + (" as shipped" if as_shipped else ""),
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds,
        "drt_seconds": report.get("total_duration_seconds"),
        "received": received,
        "stored": after["stored"],
    }


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


def run_attiva(rows: int, base_url: str, workdir: Path) -> dict[str, Any]:
    """Attiva's engine syncing the same table to the same sandbox, in its own process as drt is
    (the sandbox runs in a thread of this one); timed from process start, as drt's run is."""
    path = "/attiva/audience"
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sync_throughput.py"), "--child-webhook",
         str(workdir / f"audience-{rows}.duckdb"), base_url, path],
        capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"attiva's sync failed:\n{child.stderr[-2000:]}")
    engine = json.loads(child.stdout.strip().splitlines()[-1])
    counts = webhook_endpoint_counts(base_url, path)
    if engine["rows"] != rows:
        raise RuntimeError(f"attiva confirmed {engine['rows']:,} of {rows:,} rows")
    return {"tool": "attiva (engine)", "rows": rows, "seconds": seconds, "rows_per_second": rows / seconds,
            "engine_seconds": engine["seconds"], "received": counts}


def print_results(results: list[dict[str, Any]]) -> None:
    print(f"{'tool':<22} {'rows':>10} {'seconds':>9} {'rows/s':>10}")
    for r in results:
        print(f"{r['tool']:<22} {r['rows']:>10,} {r['seconds']:>9.2f} {r['rows_per_second']:>10,.0f}")
    drt = next((r for r in results if r["tool"].startswith("drt") and "as shipped" not in r["tool"]), None)
    if drt is not None and drt.get("drt_seconds") is not None:
        print(f"(drt's own figure for the sync: {drt['drt_seconds']:.2f} s; the rest is CLI start-up)")
    attiva = next((r for r in results if r["tool"].startswith("attiva")), None)
    if drt is not None and attiva is not None:
        ratio = attiva["rows_per_second"] / drt["rows_per_second"]
        print(f"attiva / drt: {ratio:.1f}x (target >= 3x)")
    shipped = next((r for r in results if "as shipped" in r["tool"]), None)
    if shipped is not None and attiva is not None:
        print(f"attiva / drt as shipped: {attiva['rows_per_second'] / shipped['rows_per_second']:,.0f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=BATCH, help="rows per request")
    parser.add_argument("--workdir", type=Path, help="keep the DuckDB file and drt project here (default: a temp dir)")
    parser.add_argument("--as-shipped-rows", type=int, default=300,
                        help="rows for drt with its own defaults (10 requests/s, a row each); 0 skips it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="drt-compare-") as tmp:
        workdir = args.workdir or Path(tmp)
        make_audience(workdir / f"audience-{args.rows}.duckdb", args.rows)
        results: list[dict[str, Any]] = []
        with running_sandbox(Path(tmp) / "sandbox", port=0, webhook_require_signature=False) as base:
            results.append(run_drt(args.rows, base, workdir, args.batch))
            results.append(run_attiva(args.rows, base, workdir))
            if args.as_shipped_rows:
                results.append(run_drt(args.as_shipped_rows, base, workdir, as_shipped=True))
        print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
