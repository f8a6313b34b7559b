"""kill -9 while messages are going out, then the next pass.

- SMTP (at-most-once): nothing reaches the server twice; only the messages in flight at the kill
  (at most the pass's concurrency) are left `unknown`; everything else is sent, now or before.
- SendGrid (effectively exactly-once): the next pass asks its Email Activity about the messages
  in flight; every message is accepted exactly once and none is left `unknown`.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
import requests

from activations.destinations.base import Secret
from activations.messaging.channels import SendGridMailChannel, SmtpChannel
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from sandbox.server import running_sandbox
from sandbox.smtp import running_smtp

from .crash_send import CONCURRENCY
from .test_send import NO_CAPS, NOW, add_customer, add_occurrence, create_tables, make_trigger

pytestmark = pytest.mark.xdist_group("messaging_send")

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 300
TOKEN = "crash-test-sendgrid-token"


def make_warehouse(path: Path, people: int = PEOPLE) -> None:
    with duckdb.connect(str(path)) as con:
        create_tables(con)
        for i in range(people):
            add_customer(con, f"c{i:03d}")
            add_occurrence(con, f"k{i:03d}", f"c{i:03d}")


def kill_mid_pass(warehouse: Path, *channel_args: str) -> None:
    """Start a pass in its own process and kill -9 it once its first outcomes are in the ledger."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.messaging.crash_send", str(warehouse), *channel_args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            if "sent" in line.split():  # the first fold: outcomes recorded, others in flight, the rest queued
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL, f"the pass ended before it was killed: {proc.stderr.read()}"


def states(con) -> dict[str, int]:
    return dict(con.execute("select state, count(*) from activation.message_ledger group by state").fetchall())


def test_smtp_a_killed_pass_leaves_only_the_messages_in_flight_unknown_and_never_sends_twice(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    make_warehouse(warehouse)
    state = tmp_path / "smtp"
    # 20 ms per message over 2 connections: the pass takes ~3 s, the kill lands early in it.
    with running_smtp(state, latency_ms=20) as (host, port):
        kill_mid_pass(warehouse, "smtp", host, str(port))
        with duckdb.connect(str(warehouse)) as con:
            left = states(con)
            assert left.get("queued", 0) > 0 and "sending" not in left, left
            channel = SmtpChannel(host, port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
            report = run_pass(con, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW)
            channel.close()
            after = states(con)
            unknown = con.execute("select reason from activation.message_ledger where state = 'unknown'").fetchall()
            sent_ids = {r[0] for r in con.execute("select message_id from activation.message_ledger "
                                                  "where state = 'sent'").fetchall()}

    received = collections.Counter(_attiva_id(json.loads(line)["raw"]) for line in
                                   (state / "smtp" / "messages.jsonl").read_text(encoding="utf-8").splitlines())
    assert max(received.values()) == 1, f"sent twice: {[i for i, n in received.items() if n > 1]}"
    # Only what was in flight is unknown; every other message went out once, before or after the kill.
    assert len(unknown) <= CONCURRENCY and report.recovered.resumed > 0
    assert after == {"sent": PEOPLE - len(unknown), **({"unknown": len(unknown)} if unknown else {})}
    assert all("in flight when the pass ended" in r and "cannot be asked" in r for (r,) in unknown)
    assert sent_ids <= set(received) and len(received) - len(sent_ids) <= len(unknown)


def test_sendgrid_a_killed_pass_is_resolved_by_the_activity_feed_exactly_once(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    make_warehouse(warehouse)
    with running_sandbox(tmp_path / "sandbox", smtp_port=None, tokens={"sendgrid": TOKEN}, env={}) as sandbox:
        base = f"{sandbox}/sendgrid"
        requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "sendgrid", "latency_ms": 20},
                      timeout=10).raise_for_status()
        kill_mid_pass(warehouse, "sendgrid", base, TOKEN)
        requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "sendgrid", "latency_ms": 0},
                      timeout=10).raise_for_status()
        with duckdb.connect(str(warehouse)) as con:
            assert states(con).get("queued", 0) > 0
            channel = SendGridMailChannel(base, Secret(TOKEN), from_email="ciao@emporionove.it", activity_lag=0)
            report = run_pass(con, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW)
            channel.close()
            after = states(con)
            provider = dict(con.execute("select message_id, provider_id from activation.message_ledger").fetchall())
        mail = requests.get(f"{sandbox}/_sandbox/state/sendgrid", timeout=10).json()["mail"]

    accepted = collections.Counter(m["message"]["custom_args"]["attiva_message_id"] for m in mail)
    assert max(accepted.values()) == 1, f"accepted twice: {[i for i, n in accepted.items() if n > 1]}"
    assert after == {"sent": PEOPLE}, (after, str(report))
    assert set(accepted) == set(provider) and report.recovered.unknown == 0
    # The ledger's provider id is SendGrid's own, also for the messages confirmed after the kill.
    assert {m["message_id"] for m in mail} == set(provider.values())


def _attiva_id(raw: str) -> str:
    for line in raw.splitlines():
        if line.lower().startswith("x-attiva-message-id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("a message without X-Attiva-Message-Id")
