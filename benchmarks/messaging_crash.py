"""kill -9 at random points of a messaging pass, then the next pass: duplicates and messages lost.

    .venv/bin/python benchmarks/messaging_crash.py [--kills 10] [--messages 400] [--seed 7]

For each channel (the sandbox's SendGrid, whose Email Activity the next pass asks; its SMTP
server, which cannot be asked), `--kills` times: a fresh warehouse with `--messages` due
messages, a pass in its own process killed with SIGKILL at a random moment of its run (drawn
over how long an uninterrupted pass takes from claiming its first batch to its end), then one ordinary pass. Printed per kill: what the
killed pass had left (`queued` = claimed, not settled), how many outcomes the next pass had
to leave unknown, duplicates (a message the server got twice: must be 0) and messages never
delivered (a ledger row the server never got). The sandbox runs in its own process, as a
real ESP would. Targets: 0 duplicates anywhere; SendGrid 0 never delivered; SMTP at most
the pass's concurrency (2) unknown, hence never delivered at most that.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.destinations.base import Secret  # noqa: E402
from activations.messaging.channels import SendGridMailChannel, SmtpChannel  # noqa: E402
from activations.messaging.journal import SUFFIX  # noqa: E402
from activations.messaging.send import run_pass  # noqa: E402
from activations.messaging.templates import Templates  # noqa: E402
from benchmarks.sandbox_throughput import free_port, sandbox_process  # noqa: E402
from tests.messaging.crash_send import CONCURRENCY  # noqa: E402
from tests.messaging.test_send import NO_CAPS, NOW, create_tables, make_trigger  # noqa: E402

TOKEN = "sandbox-sendgrid-token"  # what the sandbox accepts by default
LATENCY_MS = 10  # per request / message: the pass lasts seconds, so kills land while it sends


def make_warehouse(path: Path, n: int) -> None:
    with duckdb.connect(str(path)) as con:
        create_tables(con)
        con.execute(f"""insert into marts.customers select 'c' || i, 'c' || i || '@example.it', 'Giulia', 'Rossi',
                        'Bologna', 'IT', 'Europe/Rome', true from range({n}) t(i)""")
        occurred = (NOW - timedelta(hours=1)).replace(tzinfo=None)
        con.execute(f"""insert into triggers.trg_test select 'k' || i, 'c' || i, timestamp '{occurred}', null,
                        'Miscela Classica', 20, 6.32, 'P1' from range({n}) t(i)""")


def start_pass(warehouse: Path, channel_args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.messaging.crash_send", str(warehouse), *channel_args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for_sending(proc: subprocess.Popen, warehouse: Path) -> float:
    """Block until the pass has claimed its first batch (the send journal has rows); the monotonic time."""
    journal = Path(str(warehouse) + SUFFIX)
    while proc.poll() is None:
        if journal.exists():
            try:
                with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
                    if db.execute("select count(*) from journal").fetchone()[0]:
                        return time.monotonic()
            except sqlite3.Error:
                pass  # created, not yet its table
        time.sleep(0.005)
    return time.monotonic()


def received(kind: str, sandbox: str) -> collections.Counter:
    """Attiva message id -> how many times the server got it."""
    if kind == "sendgrid":
        mail = requests.get(f"{sandbox}/_sandbox/state/sendgrid", timeout=30).json()["mail"]
        return collections.Counter(m["message"]["custom_args"]["attiva_message_id"] for m in mail)
    found = collections.Counter()
    for line in _smtp_lines(sandbox)[sandbox.smtp_seen:]:
        found[json.loads(line)["attiva_message_id"]] += 1
    return found


def _smtp_lines(sandbox) -> list[str]:
    store = Path(sandbox.state) / "smtp" / "messages.jsonl"
    return store.read_text(encoding="utf-8").splitlines() if store.exists() else []


def reset(kind: str, sandbox: str) -> None:
    """Count only what the server gets from now on (the same message ids come back every round)."""
    if kind == "sendgrid":
        requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "sendgrid"}, timeout=30).raise_for_status()
    else:
        sandbox.smtp_seen = len(_smtp_lines(sandbox))


def channel(kind: str, sandbox: str):
    if kind == "sendgrid":
        return SendGridMailChannel(f"{sandbox}/sendgrid", Secret(TOKEN), from_email="ciao@emporionove.it",
                                   activity_lag=0)
    return SmtpChannel("127.0.0.1", sandbox.smtp_port, from_email="ciao@emporionove.it")


def one_kill(kind: str, sandbox, work: Path, n: int, at: float) -> dict:
    reset(kind, sandbox)
    warehouse = work / f"{kind}-{time.monotonic_ns()}.duckdb"
    make_warehouse(warehouse, n)
    args = ["sendgrid", f"{sandbox}/sendgrid", TOKEN] if kind == "sendgrid" else ["smtp", "127.0.0.1",
                                                                                  str(sandbox.smtp_port)]
    proc = start_pass(warehouse, args)
    wait_for_sending(proc, warehouse)
    try:
        proc.wait(timeout=at)
        killed = False  # it finished first
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = True
    with duckdb.connect(str(warehouse)) as con:
        left = dict(con.execute("select state, count(*) from activation.message_ledger group by 1").fetchall()) \
            if con.execute("select count(*) from information_schema.tables where table_name = 'message_ledger'"
                           ).fetchone()[0] else {}
        sender = channel(kind, sandbox)
        report = run_pass(con, [make_trigger()], {"email": sender}, Templates(), NO_CAPS, NOW)
        sender.close()
        rows = dict(con.execute("select message_id, state from activation.message_ledger").fetchall())
    got = received(kind, sandbox)
    return {"at": at, "killed": killed, "left": left, "unknown": sum(s == "unknown" for s in rows.values()),
            "duplicates": sum(c - 1 for c in got.values() if c > 1),
            "never_delivered": sum(1 for m in rows if m not in got),
            "confirmed": report.recovered.confirmed, "resent": report.recovered.resent,
            "resumed": report.recovered.resumed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    draw = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="attiva-messaging-crash-"))
    smtp_port = free_port()
    with sandbox_process(work / "sandbox", smtp_port=smtp_port) as sandbox:
        sandbox.smtp_port, sandbox.state = smtp_port, work / "sandbox"
        requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "sendgrid", "latency_ms": LATENCY_MS},
                      timeout=30).raise_for_status()
        requests.post(f"{sandbox}/_sandbox/mail/faults", json={"latency_ms": LATENCY_MS},
                      timeout=30).raise_for_status()
        totals = {}
        for kind in ("sendgrid", "smtp"):
            reset(kind, sandbox)
            warehouse = work / f"{kind}-reference.duckdb"
            make_warehouse(warehouse, args.messages)
            proc = start_pass(warehouse, ["sendgrid", f"{sandbox}/sendgrid", TOKEN] if kind == "sendgrid"
                              else ["smtp", "127.0.0.1", str(smtp_port)])
            started = wait_for_sending(proc, warehouse)
            proc.wait()
            length = time.monotonic() - started
            print(f"\n{kind}: an uninterrupted pass sends {args.messages} messages in {length:.1f} s (from its "
                  f"first claim to its exit); each kill lands at a random moment of that, counted from the claim")
            print(f"{'kill':>4} {'at s':>6}  {'left by the killed pass':<34} {'next pass':<34} "
                  f"{'unknown':>7} {'dupl.':>5} {'never delivered':>15}")
            results = []
            for i in range(1, args.kills + 1):
                for _ in range(5):  # a pass that finished before its kill is drawn again: 10 kills that land
                    r = one_kill(kind, sandbox, work, args.messages, draw.uniform(0.0, length))
                    if r["killed"]:
                        break
                results.append(r)
                left = ", ".join(f"{n} {s}" for s, n in sorted(r["left"].items())) or "nothing yet"
                after = f"{r['resumed']} resumed, {r['confirmed']} confirmed, {r['resent']} resent"
                print(f"{i:>4} {r['at']:>6.2f}  {left if r['killed'] else 'finished before the kill':<34} "
                      f"{after:<34} {r['unknown']:>7} {r['duplicates']:>5} {r['never_delivered']:>15}")
            totals[kind] = results
    print()
    for kind, results in totals.items():
        print(f"{kind}: {sum(r['killed'] for r in results)} kills landed; duplicates {sum(r['duplicates'] for r in results)}"
              f" (target 0); never delivered per kill max {max(r['never_delivered'] for r in results)}, total "
              f"{sum(r['never_delivered'] for r in results)}; unknown per kill max {max(r['unknown'] for r in results)}"
              f" (concurrency {CONCURRENCY})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
