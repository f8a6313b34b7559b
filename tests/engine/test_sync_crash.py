"""kill -9 in the middle of a sync, then a rerun: the destination ends equal to the audience,
nothing lost, nothing created twice, and the killed run is on record as crashed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from activations.engine.run import run_sync

from .setups import FAST_POLICY, add_people, eligible, expected, held, make_client, make_sync, sandbox_state

pytestmark = pytest.mark.xdist_group("engine")

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 2000
OPTIONS = '{"max_concurrency": 2}'


@pytest.mark.parametrize("kill_when", ["after_confirmations", "before_any_confirmation"])
def test_a_sync_killed_midway_is_finished_by_the_next_run(sandbox, warehouse_path, kill_when):
    """Killed after the ledger took some confirmations (the rerun sends only the rest), or while the
    destination already holds rows the ledger never heard of (the rerun upserts them again, once)."""
    with duckdb.connect(str(warehouse_path)) as con:
        add_people(con, PEOPLE)
    # Slow enough that the kill lands mid-run: 20 batches, each an upsert and a list update.
    sandbox.faults("hubspot", latency_ms=120)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.crash_sync", str(warehouse_path), sandbox.base, "hubspot", OPTIONS],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    confirmed_before_kill = 0
    try:
        for line in proc.stdout:
            if kill_when == "before_any_confirmation" and line.startswith("started"):
                # As soon as the destination holds rows: before the ledger's first flush (2 s in).
                while not held(sandbox.base, "hubspot") and proc.poll() is None:
                    threading.Event().wait(0.02)
                os.kill(proc.pid, signal.SIGKILL)
                break
            if line.startswith("confirmed "):
                confirmed_before_kill += int(line.split()[1])
                if confirmed_before_kill:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        proc.wait(timeout=30)
        confirmed_before_kill += sum(int(line.split()[1]) for line in proc.stdout if line.startswith("confirmed "))
    finally:
        watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL, f"the sync ended before it was killed: {proc.stderr.read()}"
    held_at_kill = held(sandbox.base, "hubspot")
    assert 0 < len(held_at_kill) < PEOPLE  # the kill did land mid-run
    if kill_when == "after_confirmations":
        assert 0 < confirmed_before_kill < PEOPLE
    else:
        assert confirmed_before_kill == 0

    sandbox.faults("hubspot", latency_ms=0)
    sync = make_sync("hubspot")
    client = make_client(sandbox.base, "hubspot")
    try:
        with duckdb.connect(str(warehouse_path)) as con:
            rerun = run_sync(con, sync, client, policy=FAST_POLICY)
            assert rerun.status == "success", rerun
            # What the killed run had confirmed is kept: the rerun does not send it again.
            assert rerun.planned <= PEOPLE - confirmed_before_kill
            runs = con.execute("select status, error from activation.sync_runs where sync_name = ? "
                               "order by started_at, status", [sync.name]).fetchall()
            assert sorted(status for status, _ in runs) == ["crashed", "success"]
            assert "killed" in next(error for status, error in runs if status == "crashed")
            snapshot = {r[0] for r in con.execute(
                "select row_key from activation.sync_snapshots where sync_name = ?", [sync.name]).fetchall()}
            assert snapshot == set(eligible(con))
            assert held(sandbox.base, "hubspot") == expected(con, "hubspot")
    finally:
        client.close()

    contacts = sandbox_state(sandbox.base, "hubspot")["contacts"]
    assert len(contacts) == PEOPLE  # each person created once
    assert len({c["id"] for c in contacts.values()}) == PEOPLE
