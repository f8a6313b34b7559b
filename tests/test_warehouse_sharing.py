"""Sharing the warehouse: DuckDB lets one process have the file at a time, so a command that finds
it taken waits in line (ATTIVA_WAREHOUSE_WAIT) and then succeeds, or, past the wait, says who
holds it. Two real processes: a holder that keeps the write lock for a moment, and `attiva`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from activations import warehouse

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists held_by_another (x int)")
print("held", flush=True)
sys.stdin.readline()  # until the test says "release" (or closes the pipe)
con.close()
"""


class Holder:
    """A process holding the warehouse's write lock until `release()`."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.proc.stdin.write("release\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()


def attiva(*argv: str, wait: float, landing: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATTIVA_WAREHOUSE_WAIT": str(wait), "ATTIVA_LANDING": str(landing)}
    return subprocess.Popen([sys.executable, "-m", "activations.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def empty_warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    (tmp_path / "landing").mkdir()
    return path


def test_a_command_waits_for_the_holder_then_succeeds(empty_warehouse, tmp_path):
    with Holder(empty_warehouse) as holder:
        command = attiva("ingest", "--warehouse", str(empty_warehouse), wait=120, landing=tmp_path / "landing")
        said = command.stderr.readline()  # it tells once that it waits, then waits
        assert said.startswith(f"waiting for the warehouse {empty_warehouse}, held by PID {holder.proc.pid} (")
        assert "up to 120s, ATTIVA_WAREHOUSE_WAIT" in said
        assert command.poll() is None
        holder.release()
        out, err = command.communicate(timeout=120)
    assert command.returncode == 0, err
    assert "Ingested 0 file(s)" in out
    with duckdb.connect(str(empty_warehouse), read_only=True) as con:  # both processes' writes are there
        assert warehouse.has_table(con, "main", "held_by_another")


def test_past_the_wait_it_says_who_holds_the_warehouse(empty_warehouse, tmp_path):
    with Holder(empty_warehouse) as holder:
        started = time.monotonic()
        command = attiva("ingest", "--warehouse", str(empty_warehouse), wait=0.5, landing=tmp_path / "landing")
        _, err = command.communicate(timeout=120)
        assert holder.proc.poll() is None
    assert command.returncode == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"attiva ingest: the warehouse {empty_warehouse} is still in use by PID {holder.proc.pid}")
    assert "duckdb.connect" in last or "-c" in last  # the holder's command line
    assert "ATTIVA_WAREHOUSE_WAIT=<seconds>" in last
    assert time.monotonic() - started < 30


def test_a_reader_waits_for_a_writer_too(empty_warehouse):
    said = []
    with Holder(empty_warehouse) as holder:
        threading.Timer(0.3, holder.release).start()
        con = warehouse.open_when_free(empty_warehouse, read_only=True, wait=30, say=said.append)
    try:
        assert warehouse.has_table(con, "main", "held_by_another")
    finally:
        con.close()
    assert len(said) == 1 and "held by PID" in said[0]


def test_an_uncontended_open_does_not_wait_or_speak(empty_warehouse):
    said = []
    started = time.monotonic()
    warehouse.open_when_free(empty_warehouse, wait=30, say=said.append).close()
    assert said == [] and time.monotonic() - started < 5


def test_a_bad_wait_setting_is_named(monkeypatch):
    monkeypatch.setenv("ATTIVA_WAREHOUSE_WAIT", "ten minutes")
    with pytest.raises(ValueError, match="ATTIVA_WAREHOUSE_WAIT='ten minutes'"):
        warehouse.wait_seconds()
