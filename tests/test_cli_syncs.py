"""The sync commands of `attiva`, in-process, on a real DuckDB file and a real sandbox over HTTP.

Two syncs of one small audience go to the sandbox's webhook (an upsert and a mirror);
the manifest and destinations.yml are written here and found through ATTIVA_MANIFEST
and ATTIVA_DESTINATIONS, as a user's deployment would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import requests

from activations.cli import main
from sandbox.faults import FaultInjector, FaultSettings
from sandbox.server import running_sandbox

pytestmark = pytest.mark.xdist_group("sandbox_cli")

ROOT = Path(__file__).resolve().parents[1]

SECRET = "cli-test-webhook-secret"
UPSERT, MIRROR = "aud_test__hook", "aud_test__mirror"
ELIGIBLE = ["c1", "c2", "c3", "c4"]  # c5 has no consent, the last row has no key
COLUMNS = ("customer_id", "email", "first_name", "consent_email")


def declaration(destination: str, mode: str, name: str) -> dict:
    return {"destination": destination, "mode": mode, "name": name, "identifiers": {"email": "email"},
            "fields": {"firstname": "first_name"}, "consent": "consent_email"}


def manifest(activations: list[dict]) -> dict:
    node = {"resource_type": "model", "name": "aud_test", "schema": "audiences", "description": "a test audience",
            "columns": {c: {"name": c} for c in COLUMNS}, "config": {"meta": {"activations": activations}}}
    return {"nodes": {"model.attiva.aud_test": node}}


def create_audience(warehouse: Path) -> None:
    """audiences.aud_test: four eligible people, one without consent, one without a key."""
    con = duckdb.connect(str(warehouse))
    con.execute("create schema if not exists audiences")
    con.execute("create table audiences.aud_test (customer_id varchar, email varchar, first_name varchar, "
                "consent_email boolean)")
    con.execute("""insert into audiences.aud_test values
        ('c1', 'anna@example.it', 'Anna', true), ('c2', 'bruno@example.it', 'Bruno', true),
        ('c3', 'carla@example.it', 'Carla', true), ('c4', 'dario@example.it', 'Dario', true),
        ('c5', 'elsa@example.it', 'Elsa', false), (null, 'fabio@example.it', 'Fabio', true)""")
    con.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A warehouse with the audience, a manifest, destinations.yml and a sandbox, all under tmp_path."""
    for name in list(os.environ):
        if name.startswith("ATTIVA_"):
            monkeypatch.delenv(name)
    warehouse = tmp_path / "warehouse.duckdb"
    create_audience(warehouse)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest([
        declaration("hook", "upsert", UPSERT), declaration("mirror_hook", "mirror", MIRROR)])))
    (tmp_path / "destinations.yml").write_text(
        "destinations:\n"
        "  hook: {type: webhook, path: /cli/upsert}\n"
        "  mirror_hook: {type: webhook, path: /cli/mirror}\n")
    with running_sandbox(tmp_path / "sandbox", port=0, env={}, tokens={"webhook": SECRET}) as base:
        for name, value in {
            "ATTIVA_WAREHOUSE": warehouse, "ATTIVA_DATA": tmp_path / "data",
            "ATTIVA_MANIFEST": tmp_path / "manifest.json", "ATTIVA_DESTINATIONS": tmp_path / "destinations.yml",
            "ATTIVA_HOOK_URL": f"{base}/webhook", "ATTIVA_HOOK_TOKEN": SECRET,
            "ATTIVA_MIRROR_HOOK_URL": f"{base}/webhook", "ATTIVA_MIRROR_HOOK_TOKEN": SECRET,
        }.items():
            monkeypatch.setenv(name, str(value))
        yield Env(tmp_path, warehouse, base)


class Env:
    def __init__(self, root: Path, warehouse: Path, base: str) -> None:
        self.root, self.warehouse, self.base = root, warehouse, base

    def received(self, path: str = "/cli/upsert") -> tuple[int, set[str]]:
        """How many rows the sandbox's webhook endpoint received, and the keys it holds."""
        endpoints = requests.get(f"{self.base}/_sandbox/state/webhook", timeout=10).json()["endpoints"]
        endpoint = endpoints.get(path, {"received": 0, "rows": {}})
        return endpoint["received"], set(endpoint["rows"])

    def faults(self, **settings) -> None:
        answer = requests.post(f"{self.base}/_sandbox/faults", json={"destination": "webhook", **settings}, timeout=10)
        answer.raise_for_status()

    def sql(self, query: str) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse))
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    def snapshot(self, sync: str) -> set[str]:
        return {r[0] for r in self.sql(f"select row_key from activation.sync_snapshots where sync_name = '{sync}'")}


def attiva(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and SECRET not in out + err
    return code, out, err


def plan_files(env: Env) -> list[Path]:
    return sorted((env.root / "data" / "plans").glob("*.json"))


# -- syncs, help, usage errors -----------------------------------------------------------------------


def test_syncs_lists_the_declared_syncs_before_any_warehouse_exists(env, capsys):
    env.warehouse.unlink()
    code, out, _ = attiva(capsys, "syncs")
    assert code == 0
    for text in (UPSERT, MIRROR, "aud_test", "hook", "mirror", "upsert", "consent_email"):
        assert text in out
    assert out.count("never run") == 2
    assert not env.warehouse.exists(), "listing syncs must not create the warehouse"


def test_syncs_on_a_freshly_built_warehouse_lists_them_as_never_run(env, capsys, handcrafted_warehouse):
    # dbt's on-run-start creates activation.sync_runs empty for the measurement models; the rest of the
    # engine's tables appear at the first sync.
    shutil.copy(handcrafted_warehouse, env.warehouse)
    create_audience(env.warehouse)
    code, out, err = attiva(capsys, "syncs")
    assert code == 0, err
    assert out.count("never run") == 2
    code, out, err = attiva(capsys, "sync", UPSERT)
    assert code == 0, err
    code, out, _ = attiva(capsys, "syncs")
    assert code == 0 and "success" in out and out.count("never run") == 1


@pytest.mark.parametrize("command", ["syncs", "plan", "apply", "sync", "retry", "status"])
def test_every_sync_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: attiva " + command in capsys.readouterr().out


def test_top_level_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "3  refused" in out and "2  usage error" in out
    assert "4  delivered, except rows the destination will never take" in out


def test_an_unknown_sync_is_a_usage_error_naming_the_declared_ones(env, capsys):
    for argv in (["sync", "aud_nope"], ["plan", "aud_nope"], ["retry", "aud_nope"], ["status", "aud_nope"]):
        code, out, err = attiva(capsys, *argv)
        assert code == 2 and UPSERT in err and MIRROR in err and "aud_nope" in err
        assert len(err.strip().splitlines()) == 1
    assert env.received() == (0, set())


def test_a_missing_manifest_or_a_bad_destinations_file_is_one_clear_line(env, capsys, monkeypatch):
    monkeypatch.setenv("ATTIVA_MANIFEST", str(env.root / "absent.json"))
    code, _, err = attiva(capsys, "syncs")
    assert code == 2 and "make dbt-parse" in err and len(err.strip().splitlines()) == 1

    monkeypatch.setenv("ATTIVA_MANIFEST", str(env.root / "manifest.json"))
    (env.root / "destinations.yml").write_text("destinations:\n  hook: {type: carrier_pigeon}\n")
    code, _, err = attiva(capsys, "sync", UPSERT)
    assert code == 2 and "carrier_pigeon" in err and len(err.strip().splitlines()) == 1


def test_a_declaration_error_names_the_model_and_field(env, capsys):
    broken = declaration("hook", "upsert", UPSERT) | {"fields": {"firstname": "no_such_column"}}
    (env.root / "manifest.json").write_text(json.dumps(manifest([broken])))
    code, _, err = attiva(capsys, "plan", UPSERT)
    assert code == 2 and "aud_test" in err and "fields.firstname" in err


# -- plan and apply ----------------------------------------------------------------------------------


def test_plan_prints_counts_and_samples_and_writes_a_reviewable_file(env, capsys):
    code, out, _ = attiva(capsys, "plan", UPSERT)
    assert code == 0
    assert "4 to add" in out and "4 of 6 audience rows eligible" in out
    assert "anna@example.it" in out and "Anna" in out
    [path] = plan_files(env)
    assert path.name.startswith(f"{UPSERT}__") and str(path) in out
    review = json.loads(path.read_text())
    assert review["sync"] == UPSERT and review["mode"] == "upsert" and review["full_resync"] is False
    assert review["counts"]["adds"] == 4 and review["counts"]["eligible_rows"] == 4
    assert [row["key"] for row in review["samples"]["add"]] == ELIGIBLE
    assert review["samples"]["add"][0] == {"key": "c1", "email": "anna@example.it", "firstname": "Anna"}
    assert review["planned_at"] and len(review["fingerprint"]) == 64
    assert env.received() == (0, set()), "planning sends nothing"


def test_apply_of_an_unchanged_plan_sends_it(env, capsys):
    attiva(capsys, "plan", UPSERT)
    [path] = plan_files(env)
    code, out, _ = attiva(capsys, "apply", str(path))
    assert code == 0 and "4 confirmed" in out
    assert env.received() == (4, set(ELIGIBLE))
    assert env.snapshot(UPSERT) == set(ELIGIBLE)


def test_apply_refuses_a_plan_the_audience_changed_since_and_sends_nothing(env, capsys):
    attiva(capsys, "plan", UPSERT)
    [path] = plan_files(env)
    env.sql("insert into audiences.aud_test values ('c6', 'gino@example.it', 'Gino', true)")
    code, _, err = attiva(capsys, "apply", str(path))
    assert code == 3
    assert "plan changed since it was reviewed" in err and "adds 4 -> 5" in err
    assert env.received() == (0, set()) and env.snapshot(UPSERT) == set()
    assert env.sql(f"select status from activation.sync_runs where sync_name = '{UPSERT}'") == [("refused",)]


def test_apply_of_a_plan_already_applied_sends_nothing_and_refuses_it_once_the_audience_changed(env, capsys):
    attiva(capsys, "plan", UPSERT)
    [path] = plan_files(env)
    assert attiva(capsys, "apply", str(path))[0] == 0
    code, out, _ = attiva(capsys, "apply", str(path))  # nothing is left of it: nothing to send
    assert code == 0 and "0 planned" in out
    assert env.received()[0] == 4
    env.sql("update audiences.aud_test set first_name = 'Anya' where customer_id = 'c1'")
    code, _, err = attiva(capsys, "apply", str(path))
    assert code == 3 and "updates 0 -> 1" in err
    assert env.received()[0] == 4


@pytest.mark.parametrize("kill", ["after-append", "after-fold"])
def test_a_killed_apply_keeps_its_end_and_its_plan_file_still_applies(env, capsys, kill):
    assert attiva(capsys, "sync", MIRROR)[0] == 0  # a used warehouse
    env.sql("update audiences.aud_test set first_name = 'Anya' where customer_id = 'c1'")
    env.sql("insert into audiences.aud_test values ('c6', 'gino@example.it', 'Gino', true)")
    attiva(capsys, "plan", MIRROR)
    [path] = plan_files(env)
    killed = subprocess.run([sys.executable, "-m", "tests.cli_killed", kill, "apply", str(path)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert env.received("/cli/mirror")[0] == 6  # the destination took the update and the add
    runs = env.sql(f"select status from activation.sync_runs where sync_name = '{MIRROR}' order by started_at")
    # Killed once its end was recorded, the run stays what it was; killed before, the next run says crashed.
    assert runs[-1] == ("success",) if kill == "after-fold" else ("running",)

    code, out, err = attiva(capsys, "apply", str(path))  # the same file: what is left of it is nothing
    assert code == 0 and "0 planned" in out, err
    assert env.received("/cli/mirror")[0] == 6, "nothing is sent twice"
    assert env.snapshot(MIRROR) == {*ELIGIBLE, "c6"}
    runs = env.sql(f"select status from activation.sync_runs where sync_name = '{MIRROR}' order by started_at")
    assert [s for (s,) in runs] == ["success", "success" if kill == "after-fold" else "crashed", "success"]


def test_apply_again_sends_what_is_left_of_the_reviewed_plan(env, capsys):
    injector = FaultInjector("webhook", FaultSettings(row_reject_rate=0.5, seed=3))
    refused = {key for key in ELIGIBLE if injector.rejects(key)}
    attiva(capsys, "plan", UPSERT)
    [path] = plan_files(env)
    env.faults(row_reject_rate=0.5, seed=3)
    assert attiva(capsys, "apply", str(path))[0] == 4
    env.faults(row_reject_rate=0.0)
    code, out, err = attiva(capsys, "apply", str(path))
    assert code == 0 and f"{len(refused)} planned" in out and f"{len(refused)} confirmed" in out, err
    assert env.snapshot(UPSERT) == set(ELIGIBLE)


def test_apply_of_a_file_that_is_not_a_plan_is_a_usage_error(env, capsys, tmp_path):
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    assert attiva(capsys, "apply", str(tmp_path / "notes.json"))[0] == 2
    assert attiva(capsys, "apply", str(tmp_path / "absent.json"))[0] == 2


# -- sync, retry, status -----------------------------------------------------------------------------


def test_sync_prints_counts_and_status_and_syncs_show_the_run(env, capsys):
    code, out, err = attiva(capsys, "sync", UPSERT)
    assert code == 0 and f"{UPSERT}: success" in out and "4 planned" in out and "4 confirmed" in out
    assert "4/4" in err and "rows/s" in err, "the progress bar goes to stderr"
    assert env.received() == (4, set(ELIGIBLE))

    code, out, _ = attiva(capsys, "status")
    assert code == 0 and UPSERT in out and "success" in out and "no rows waiting" in out
    code, out, _ = attiva(capsys, "syncs")
    assert code == 0 and "success" in out and "never run" in out  # the mirror has not run

    # A quiet run confirms nothing new: the listing still says what the destination holds, and the totals.
    code, out, _ = attiva(capsys, "sync", UPSERT)
    assert code == 0 and "0 confirmed" in out
    code, out, _ = attiva(capsys, "syncs")
    row = next(line for line in out.splitlines() if UPSERT in line)
    assert row.split()[-7:] == ["4", "0", "4", "in", "2", "runs", "0"], out  # holds, last run, all runs, rejects


def test_sync_all_runs_every_declared_sync(env, capsys):
    code, out, _ = attiva(capsys, "sync", "--all")
    assert code == 0 and f"{UPSERT}: success" in out and f"{MIRROR}: success" in out
    assert env.received("/cli/mirror") == (4, set(ELIGIBLE))
    assert attiva(capsys, "sync")[0] == 2  # neither a name nor --all
    assert attiva(capsys, "sync", UPSERT, "--all")[0] == 2


def test_retry_resends_only_the_rejected_rows(env, capsys):
    injector = FaultInjector("webhook", FaultSettings(row_reject_rate=0.5, seed=3))
    rejected = {key for key in ELIGIBLE if injector.rejects(key)}
    assert 0 < len(rejected) < len(ELIGIBLE)
    env.faults(row_reject_rate=0.5, seed=3)
    code, out, _ = attiva(capsys, "sync", UPSERT)
    assert code == 4 and f"{UPSERT}: delivered_except_invalid" in out and f"{len(rejected)} rejected" in out
    assert f"attiva retry {UPSERT}" in out

    code, out, _ = attiva(capsys, "status", UPSERT)
    assert code == 0 and "delivered_except_invalid" in out and "rejected by sandbox fault injection" in out
    code, out, _ = attiva(capsys, "syncs")
    assert "delivered_except_invalid" in out

    env.faults(row_reject_rate=0.0)
    before, _ = env.received()
    code, out, _ = attiva(capsys, "retry", UPSERT)
    assert code == 0 and f"{len(rejected)} planned" in out and f"{len(rejected)} confirmed" in out
    after, keys = env.received()
    assert after - before == len(rejected) and keys == set(ELIGIBLE)
    assert env.sql(f"select count(*) from activation.sync_rejects where sync_name = '{UPSERT}'") == [(0,)]
    assert env.snapshot(UPSERT) == set(ELIGIBLE)


def test_a_mirror_sync_of_an_emptied_audience_is_refused_until_forced(env, capsys):
    assert attiva(capsys, "sync", MIRROR)[0] == 0
    env.sql("delete from audiences.aud_test")
    code, _, err = attiva(capsys, "sync", MIRROR)
    assert code == 3 and "refusing to remove 4 of the 4 rows" in err and "--force" in err
    assert env.snapshot(MIRROR) == set(ELIGIBLE) and env.received("/cli/mirror")[0] == 4

    code, out, _ = attiva(capsys, "sync", MIRROR, "--force")
    assert code == 0 and "4 confirmed" in out
    assert env.snapshot(MIRROR) == set()
    assert env.received("/cli/mirror")[0] == 8  # the four removals went out
    code, out, _ = attiva(capsys, "status", MIRROR)
    assert "refused" in out and "success" in out


def test_plan_warns_when_apply_would_be_refused(env, capsys):
    assert attiva(capsys, "sync", MIRROR)[0] == 0
    env.sql("delete from audiences.aud_test")
    code, out, err = attiva(capsys, "plan", MIRROR)
    assert code == 0 and "4 to remove" in out and "refused unless --force" in err
    [path] = plan_files(env)
    assert json.loads(path.read_text())["samples"]["remove"] == [{"key": key} for key in ELIGIBLE]
    assert attiva(capsys, "apply", str(path))[0] == 3
    assert attiva(capsys, "apply", str(path), "--force")[0] == 0
    assert env.snapshot(MIRROR) == set()


def test_sync_before_the_warehouse_exists_is_a_usage_error(env, capsys):
    env.warehouse.unlink()
    code, _, err = attiva(capsys, "sync", UPSERT)
    assert code == 2 and "no warehouse" in err
    assert attiva(capsys, "status")[0] == 0


def test_an_audience_the_warehouse_lacks_is_a_usage_error(env, capsys):
    env.sql("drop table audiences.aud_test")
    for argv in (["plan", UPSERT], ["sync", UPSERT]):
        code, _, err = attiva(capsys, *argv)
        assert code == 2 and "audiences.aud_test" in err and "attiva build" in err


def test_the_fingerprint_is_the_set_of_rows_sent_whatever_their_order():
    from activations.engine.review import fingerprint
    from activations.engine.state import ensure_state

    con = duckdb.connect()
    ensure_state(con)
    rows = [("add", "c1", "h1", True), ("update", "c2", "h2", True), ("remove", "c3", "h3", True)]
    for plan_id, ordered in (("p1", rows), ("p2", rows[::-1])):
        for operation, key, row_hash, send in ordered:
            con.execute("insert into activation.sync_plan_rows values (?, 's', ?, ?, ?, null, ?)",
                        [plan_id, operation, key, row_hash, send])
    assert fingerprint(con, "p1") == fingerprint(con, "p2")
    con.execute("insert into activation.sync_plan_rows values ('p2', 's', 'update', 'c4', 'h4', null, false)")
    assert fingerprint(con, "p1") == fingerprint(con, "p2"), "rows the mode does not send do not count"
    con.execute("update activation.sync_plan_rows set row_hash = 'h9' where plan_id = 'p2' and row_key = 'c2'")
    assert fingerprint(con, "p1") != fingerprint(con, "p2")
    con.execute("update activation.sync_plan_rows set row_hash = 'h2', operation = 'add' "
                "where plan_id = 'p2' and row_key = 'c2'")
    assert fingerprint(con, "p1") != fingerprint(con, "p2")
    assert fingerprint(con, "empty") == fingerprint(con, "also-empty")


def test_plan_shows_what_the_mode_leaves_out(env, capsys):
    insert_only = declaration("hook", "insert", UPSERT)
    (env.root / "manifest.json").write_text(json.dumps(manifest([insert_only])))
    assert attiva(capsys, "sync", UPSERT)[0] == 0
    env.sql("update audiences.aud_test set first_name = 'Anya' where customer_id = 'c1'")
    code, out, _ = attiva(capsys, "plan", UPSERT)
    assert code == 0 and "0 to update" in out and "not sent by mode insert: 1 update" in out
    [path] = plan_files(env)
    assert json.loads(path.read_text())["left_out"] == {"update": 1}


def test_the_spark_target_without_java_is_a_usage_error_saying_what_to_install(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java (and, in a venv without the extra, no pyspark)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    code, _, err = attiva(capsys, "sync", UPSERT, "--target", "spark")
    assert code == 2
    assert "the Spark target needs" in err and ("Java 17" in err or "pyspark" in err)


@pytest.mark.parametrize(("mode", "full_resync"), [
    ("upsert", False), ("insert", False), ("update", False), ("mirror", False), ("full_resync", False),
    ("mirror", True), ("upsert", True)])
def test_apply_runs_a_reviewed_plan_of_every_mode_on_a_first_and_a_later_run(env, capsys, mode, full_resync):
    if mode == "update":  # an update-only sync updates rows an earlier upsert put there
        assert attiva(capsys, "sync", UPSERT)[0] == 0
    (env.root / "manifest.json").write_text(json.dumps(manifest([declaration("hook", mode, UPSERT)])))
    resync = ["--full-resync"] if full_resync else []
    every, changed = (4, 4) if full_resync or mode == "full_resync" else (4, 0 if mode == "insert" else 1)
    expected = {"first": 0 if mode == "update" and not full_resync else every, "later": changed}
    for run in ("first", "later"):
        if run == "later":
            env.sql("update audiences.aud_test set first_name = first_name || '!' where customer_id = 'c1'")
        for path in plan_files(env):
            path.unlink()
        assert attiva(capsys, "plan", UPSERT, *resync)[0] == 0
        [path] = plan_files(env)
        code, out, err = attiva(capsys, "apply", str(path))
        assert code == 0, f"{run} run: {out}{err}"
        assert f"{UPSERT}: success" in out and f"{expected[run]} confirmed" in out, f"{run} run: {out}"
    status = env.sql(f"select status from activation.sync_runs where sync_name = '{UPSERT}' order by started_at")
    assert {s for (s,) in status} == {"success"}


def test_rows_the_destination_never_takes_have_their_own_status_and_exit_code(env, capsys):
    env.sql("insert into audiences.aud_test values ('c7', 'not-an-email', 'Gino', true)")  # set aside
    injector = FaultInjector("webhook", FaultSettings(row_reject_rate=0.5, seed=3))
    refused = {key for key in ELIGIBLE if injector.rejects(key)}
    env.faults(row_reject_rate=0.5, seed=3)  # the destination refuses these rows, run after run
    for run in ("first", "later", "and later"):
        code, out, _ = attiva(capsys, "sync", UPSERT)
        assert code == 4, f"{run} run: {out}"
        assert f"{UPSERT}: delivered_except_invalid" in out and f"{len(refused)} rejected, 1 invalid" in out
        assert f"attiva status {UPSERT}" in out
    assert env.snapshot(UPSERT) == set(ELIGIBLE) - refused
    code, out, _ = attiva(capsys, "syncs")
    assert code == 0 and "delivered_except_invalid" in out

    # The source is fixed and the destination takes the rows: success again.
    env.faults(row_reject_rate=0.0)
    env.sql("update audiences.aud_test set email = 'gino@example.it' where customer_id = 'c7'")
    code, out, _ = attiva(capsys, "sync", UPSERT)
    assert code == 0 and f"{UPSERT}: success" in out
    assert env.snapshot(UPSERT) == {*ELIGIBLE, "c7"}


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_fails_fast_and_outranks_invalid_rows_in_sync_all(env, capsys, monkeypatch):
    env.sql("insert into audiences.aud_test values ('c7', 'not-an-email', 'Gino', true)")
    monkeypatch.setenv("ATTIVA_MIRROR_HOOK_URL", f"http://127.0.0.1:{closed_port()}/webhook")
    code, out, _ = attiva(capsys, "sync", "--all")
    assert f"{UPSERT}: delivered_except_invalid" in out and f"{MIRROR}: failed" in out
    assert "connection refused" in out.lower()
    assert code == 1, "a failed sync outranks another's invalid rows"
    [(seconds,)] = env.sql(f"select duration_seconds from activation.sync_runs where sync_name = '{MIRROR}'")
    assert seconds < 5, f"a refused connection took {seconds:.1f}s to fail"
    assert env.snapshot(MIRROR) == set(), "nothing is marked sent that the destination did not confirm"
    assert env.sql(f"select kind, count(*) from activation.sync_rejects where sync_name = '{MIRROR}' group by kind") \
        == [("invalid", 1)], "rows are not marked rejected when the destination was never reached"
