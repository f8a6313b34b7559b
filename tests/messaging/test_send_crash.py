"""kill -9 while messages are going out, then another pass: no message ever reaches the SMTP
server twice; what the killed pass left `sending` is recorded as "outcome unknown"."""

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

from activations.messaging.channels import SmtpChannel
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from activations.sandbox.smtp import running_smtp

from .test_send import NO_CAPS, NOW, add_customer, add_occurrence, create_tables, make_trigger

pytestmark = pytest.mark.xdist_group("messaging_send")

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 300


def test_a_pass_killed_while_sending_never_sends_twice(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        create_tables(con)
        for i in range(PEOPLE):
            add_customer(con, f"c{i:03d}")
            add_occurrence(con, f"k{i:03d}", f"c{i:03d}")
    state = tmp_path / "smtp"
    # 20 ms per message over 2 connections: the pass takes ~3 s, the kill lands in the middle.
    with running_smtp(state, latency_ms=20) as (host, port):
        proc = subprocess.Popen([sys.executable, "-m", "tests.messaging.crash_send", str(warehouse), host, str(port)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            recorded = 0
            for line in proc.stdout:
                recorded += "sent" in line.split()
                if recorded >= 2:  # some outcomes recorded, others in flight
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            proc.wait(timeout=30)
        finally:
            watchdog.cancel()
        assert proc.returncode == -signal.SIGKILL, f"the pass ended before it was killed: {proc.stderr.read()}"

        with duckdb.connect(str(warehouse)) as con:
            stuck = con.execute("select count(*) from activation.message_ledger where state = 'sending'").fetchone()[0]
            assert stuck > 0, "the kill should have caught messages in flight"
            channel = SmtpChannel(host, port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
            report = run_pass(con, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW)
            channel.close()
            assert report.recovered == stuck
            states = dict(con.execute("select state, count(*) from activation.message_ledger group by state").fetchall())
            reasons = {r for (r,) in con.execute("select reason from activation.message_ledger where state = 'failed'")
                       .fetchall()}

    lines = (state / "smtp" / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    ids = collections.Counter(_attiva_id(json.loads(line)["raw"]) for line in lines)
    assert max(ids.values()) == 1, f"sent twice: {[i for i, n in ids.items() if n > 1]}"
    # Every message is accounted for: sent, or failed with an unknown outcome (at-most-once).
    assert states.get("sent", 0) + states.get("failed", 0) == PEOPLE and "sending" not in states
    assert reasons <= {"outcome unknown: the process ended while sending; not resent (at-most-once)"}
    # Whatever the server got was either recorded sent, or is one of the "unknown" ones.
    assert states["sent"] <= len(ids) <= states["sent"] + states.get("failed", 0)


def _attiva_id(raw: str) -> str:
    for line in raw.splitlines():
        if line.lower().startswith("x-attiva-message-id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("a message without X-Attiva-Message-Id")
