"""Dagster in production form: the daemon on deploy/dagster.postgres.yaml, against a real
PostgreSQL server, evaluates a schedule tick and sensor ticks and the runs they request finish,
everything recorded in Postgres.

The daemon loads two code locations: the project's own (its real sensors, with the landing
folder empty, so `landing_files` skips and says why) and a probe location whose schedule and
sensor launch a one-op job (a run of the real pipeline needs a built warehouse: minutes, not
seconds). The daemon is `dagster-daemon run`, as in production; runs are launched by the
QueuedRunCoordinator and DefaultRunLauncher in processes of their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.production.conftest import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("postgres")]

HERE = Path(__file__).resolve().parent
DAEMON = Path(sys.executable).parent / "dagster-daemon"
TIMEOUT = 180  # seconds to wait for the runs; 70 s was seen on 2 cores under load 17


def location(name: str, file: str) -> str:
    return (f"  - python_file:\n      relative_path: {HERE / file}\n      working_directory: {ROOT}\n"
            f"      attribute: defs\n      location_name: {name}\n      executable_path: {sys.executable}\n")


def start_missed_schedule(instance, workspace: Path, name: str, missed_by: float) -> None:
    """Start a schedule as if it had been started `missed_by` seconds ago while the daemon was down:
    the daemon's first pass runs the tick it missed. Dagster has no public call to backdate a
    schedule's start, hence the internal classes (dagster 1.13)."""
    from dagster._core.scheduler.instigation import ScheduleInstigatorData
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as context:
        repo = context.create_request_context().get_code_location("probe").get_repository("__repository__")
        schedule = repo.get_schedule(name)
        state = instance.start_schedule(schedule)
        started = ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=time.time() - missed_by)
        instance.update_instigator_state(state.with_data(started))


def ticks_of(instance, name: str) -> list:
    states = [s for s in instance.all_instigator_state() if s.instigator_name == name]
    return [t for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id)]


def runs_tagged(instance, key: str, value: str) -> list:
    import dagster as dg

    return list(instance.get_runs(filters=dg.RunsFilter(tags={key: value})))


def wait_for(done, daemon: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        if "Error loading repository location" in log.read_text():
            pytest.fail(f"a code location failed to load:\n{log.read_text()[-6000:]}")
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited ({daemon.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {TIMEOUT}s; daemon log:\n{log.read_text()[-4000:]}")
        time.sleep(1)


def stop(daemon: subprocess.Popen) -> None:
    """The daemon, its code servers and any run still going (one process group)."""
    if daemon.poll() is None:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def test_the_daemon_runs_a_schedule_tick_and_a_sensor_tick_to_successful_runs_recorded_in_postgres(
        postgres_home, tmp_path, dbt_manifest):
    import dagster as dg
    from dagster._core.scheduler.instigation import TickStatus  # not exported by dagster

    from tests.production.probe_location import STORAGE_TAG

    started = time.monotonic()
    instance = dg.DagsterInstance.from_config(str(postgres_home.home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    probe_only = tmp_path / "probe_workspace.yaml"
    probe_only.write_text("load_from:\n" + location("probe", "probe_location.py"))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from:\n" + location("attiva", "attiva_location.py")
                         + location("probe", "probe_location.py"))
    start_missed_schedule(instance, probe_only, "hourly_heartbeat", missed_by=3700)

    env = {**os.environ, **postgres_home.env(), "ATTIVA_HOME": str(ROOT), "ATTIVA_DATA": str(data),
           "ATTIVA_LANDING": str(data / "landing"), "ATTIVA_WAREHOUSE": str(data / "warehouse.duckdb")}
    env.pop("DAGSTER_IS_DEV_CLI", None)
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen([str(DAEMON), "run", "-w", str(workspace)], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def finished(runs) -> bool:
            return any(r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for r in runs)

        wait_for(lambda: finished(runs_tagged(instance, "dagster/schedule_name", "hourly_heartbeat"))
                 and finished(runs_tagged(instance, "dagster/sensor_name", "heartbeat_sensor"))
                 and any(t.status == TickStatus.SKIPPED for t in ticks_of(instance, "landing_files")),
                 daemon, log, "finished schedule and sensor runs and a landing_files tick")
        heartbeats = set(instance.get_daemon_heartbeats())
    finally:
        stop(daemon)
    seconds = time.monotonic() - started

    # The schedule tick the daemon caught up on, and its run, finished in a process of its own
    # that loaded the same Postgres instance.
    scheduled = runs_tagged(instance, "dagster/schedule_name", "hourly_heartbeat")[-1]  # the oldest
    assert scheduled.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-4000:]
    assert scheduled.tags[STORAGE_TAG] == "PostgresRunStorage"
    schedule_ticks = ticks_of(instance, "hourly_heartbeat")
    assert any(t.status == TickStatus.SUCCESS and scheduled.run_id in t.run_ids for t in schedule_ticks)

    (sensed,) = runs_tagged(instance, "dagster/sensor_name", "heartbeat_sensor")  # once, however many ticks
    assert sensed.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-4000:]
    assert sensed.tags[STORAGE_TAG] == "PostgresRunStorage"
    assert any(t.status == TickStatus.SUCCESS and sensed.run_id in t.run_ids
               for t in ticks_of(instance, "heartbeat_sensor"))
    step_events = instance.all_logs(sensed.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
    assert [e.step_key for e in step_events] == ["record_run_storage"]

    # The project's own sensor, evaluated by the daemon on the real definitions.
    skipped = [t for t in ticks_of(instance, "landing_files") if t.status == TickStatus.SKIPPED]
    assert f"nothing new in {(data / 'landing').resolve()}" in skipped[0].skip_reason

    assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= heartbeats

    # All of it is in PostgreSQL's tables, and nothing fell back to SQLite files in DAGSTER_HOME.
    con = postgres_home.server.connect(postgres_home.db_name)
    try:
        with con.cursor() as cur:
            cur.execute("select count(*) from runs where status = 'SUCCESS'")
            assert cur.fetchone()[0] >= 2
            cur.execute("select count(*) from job_ticks")
            assert cur.fetchone()[0] >= 3
            cur.execute("select count(*) from event_logs where run_id = %s", (sensed.run_id,))
            assert cur.fetchone()[0] > 5
    finally:
        con.close()
    assert not list(postgres_home.home.rglob("*.db"))
    instance.dispose()
    print(f"daemon on Postgres: schedule and sensor runs finished in {seconds:.1f}s")
