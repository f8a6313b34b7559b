"""The serving store: snapshots swapped without a restart, never read half-built, and `attiva forget`."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from activations.forget import forget
from activations.messaging.inbox import INBOX_FILE, InAppMessage, Inbox
from activations.serve.store import FORGOTTEN, build_serving_store, current_version
from tests.serve.conftest import MARIO, PAOLA, copy_warehouse


def rename_mario(warehouse: Path, name: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.customers set first_name = ? where customer_id = ?", [name, MARIO])


def test_a_new_snapshot_is_picked_up_without_a_restart(api, serving, consented_warehouse, tmp_path):
    before = api.get("/v1/profiles/device_id/D1").json()
    assert before["traits"]["first_name"] == "Mario" and before["snapshot"] == current_version(serving)

    changed = copy_warehouse(consented_warehouse, tmp_path / "changed.duckdb", profiling=False)
    rename_mario(changed, "Mariolino")
    build_serving_store(changed, serving)
    after = api.get("/v1/profiles/device_id/D1").json()
    assert after["traits"]["first_name"] == "Mariolino"
    assert after["snapshot"] == current_version(serving) != before["snapshot"]


def test_readers_see_only_whole_snapshots_while_they_are_swapped(api, serving, consented_warehouse, tmp_path):
    # Each snapshot names Mario after itself: an answer mixing two snapshots would show it.
    names: dict[str, str] = {current_version(serving): "Mario"}
    answers, errors, stop = [], [], threading.Event()

    def read() -> None:
        client = api.as_key("server-key")
        while not stop.is_set():
            answer = client.get("/v1/profiles/device_id/D1")
            (answers if answer.status_code == 200 else errors).append(answer.json())

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for i in range(4):
            copy = copy_warehouse(consented_warehouse, tmp_path / f"w{i}.duckdb", profiling=False)
            rename_mario(copy, f"Mario-{i}")
            version = build_serving_store(copy, serving).name
            names[version] = f"Mario-{i}"
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert not errors
    assert len({a["snapshot"] for a in answers}) >= 2
    assert all(names[a["snapshot"]] == a["traits"]["first_name"] for a in answers)
    assert not [p for p in serving.iterdir() if p.name.startswith(".building")]
    assert len([p for p in serving.iterdir() if p.is_dir()]) <= 3  # the current one and two before it


def test_forget_removes_the_person_from_serving(api, serving, consented_warehouse, tmp_path, monkeypatch):
    warehouse = copy_warehouse(consented_warehouse, tmp_path / "forget.duckdb", profiling=False)
    stale = copy_warehouse(consented_warehouse, tmp_path / "stale.duckdb", profiling=False)
    build_serving_store(warehouse, serving)
    assert api.get("/v1/profiles/email/mario.rossi%40gmail.com").status_code == 200
    monkeypatch.setenv("ATTIVA_SERVING", str(serving))
    inbox = Inbox(serving / INBOX_FILE)  # an in-app message for him, and one for Paola
    inbox.put([InAppMessage(f"m-{who}", who, "c", 1, "t", "b", None, 1, "2026-11-20T00:00:00Z", "2026-12-20T00:00:00Z")
               for who in (MARIO, PAOLA)])

    with duckdb.connect(str(warehouse)) as con:
        report = forget(con, "mario.rossi@gmail.com")
    assert report.serving_profiles_removed == 1
    assert "serving store: 1" in str(report)
    assert report.in_app_messages_deleted == 1 and inbox.has(["m-" + MARIO, "m-" + PAOLA]) == {"m-" + PAOLA}
    inbox.close()
    for path in ("/v1/profiles/email/mario.rossi%40gmail.com", "/v1/profiles/device_id/D1",
                 f"/v1/profiles/customer_id/{MARIO}", "/v1/audiences/champions/members/device_id/D1"):
        answer = api.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    assert api.get("/v1/profiles/device_id/D2").status_code == 200  # the others are still there
    versions = [p for p in serving.iterdir() if p.is_dir()]
    assert [p.name for p in versions] == [current_version(serving)], "older snapshots still hold the person"
    assert b"mario.rossi@gmail.com" not in (versions[0] / "store.sqlite").read_bytes()
    assert (serving / FORGOTTEN).read_text().split() == [MARIO]

    # A build from a warehouse read before the forget cannot bring him back.
    build_serving_store(stale, serving)
    assert api.get("/v1/profiles/device_id/D1").status_code == 404


def test_forget_leaves_a_store_built_from_another_warehouse_alone(serving, consented_warehouse, tmp_path,
                                                                   monkeypatch):
    other = copy_warehouse(consented_warehouse, tmp_path / "other.duckdb", profiling=False)
    monkeypatch.setenv("ATTIVA_SERVING", str(serving))
    version = current_version(serving)
    with duckdb.connect(str(other)) as con:
        report = forget(con, "mario.rossi@gmail.com")
    assert report.customers == [MARIO] and report.serving_profiles_removed == 0
    assert current_version(serving) == version and not (serving / FORGOTTEN).exists()
