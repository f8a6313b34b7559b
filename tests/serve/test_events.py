"""POST /v1/events: per-event validation, durable files in the landing folder that ingestion reads."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb

from activations.ingest import load_landing
from activations.serve.events import MAX_BATCH
from tests.serve.conftest import NOW


def event(event_id: str, **fields) -> dict:
    return {"event_id": event_id, "event_type": "product_view", "occurred_at": "2026-11-20T11:58:00+01:00",
            "anonymous_id": "D1", "product_id": "P3", "platform": "web", **fields}


def files(landing: Path) -> list[Path]:
    return sorted(landing.rglob("*.jsonl"))


def test_a_batch_keeps_the_good_events_and_says_why_the_bad_one_was_refused(api, landing, tmp_path):
    batch = [event("api-1"), event("api-2", event_type="add_to_cart", quantity=2),
             event("api-3", occurred_at="yesterday"), event("api-4", event_type="identify", email=" Mario.Rossi@Gmail.com")]
    answer = api.post("/v1/events", json=batch)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"], body["duplicate"]) == (3, 1, 0)
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "rejected", "accepted"]
    assert body["results"][2]["event_id"] == "api-3"
    assert "occurred_at" in body["results"][2]["error"]["message"]
    assert body["results"][2]["error"]["code"] == "invalid_event"

    written = files(landing)
    assert len(written) == 1 and written[0].relative_to(landing).parts[:2] == ("events", "api")
    assert not [p for p in landing.rglob("*") if p.name.startswith(".")], "a temporary file was left behind"

    # Ingestion reads them as they are, into raw.events.
    warehouse = tmp_path / "ingested.duckdb"
    report = load_landing(landing, warehouse)
    assert not report.failed_files, str(report)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select event_id, event_type, occurred_at, quantity, email from raw.events "
                           "order by event_id").fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [("api-1", "product_view", None), ("api-2", "add_to_cart", 2),
                                                  ("api-4", "identify", None)]
    assert str(rows[0][2]) == "2026-11-20 10:58:00"  # +01:00 stored as UTC
    assert rows[2][4] == " Mario.Rossi@Gmail.com"  # normalized by dbt's staging, like every source


def test_single_events_replays_and_all_bad_batches(api, landing):
    first = api.post("/v1/events", json=event("one"))
    assert first.status_code == 200 and first.json()["accepted"] == 1
    replay = api.post("/v1/events", json={"events": [event("one"), event("two"), event("two")]})
    assert replay.status_code == 200
    assert [r["status"] for r in replay.json()["results"]] == ["duplicate", "accepted", "duplicate"]
    assert sum(len(p.read_text().splitlines()) for p in files(landing)) == 2

    bad = [event("x", event_type="teleport"), event("y", color="red"), event("z", anonymous_id=None),
           event("w", occurred_at=(NOW + timedelta(hours=1)).isoformat()), event("v", quantity="2"), "not an object",
           {"event_type": "page_view"}]
    refused = api.post("/v1/events", json=bad)
    assert refused.status_code == 400
    reasons = [r["error"]["message"] for r in refused.json()["results"]]
    assert "event_type must be one of" in reasons[0] and "unknown field(s): color" in reasons[1]
    assert "needs one of" in reasons[2] and "future" in reasons[3] and "whole number" in reasons[4]
    assert "JSON object" in reasons[5] and "event_id is required" in reasons[6]
    assert sum(len(p.read_text().splitlines()) for p in files(landing)) == 2


def test_oversized_and_malformed_bodies(api, landing):
    too_many = api.post("/v1/events", json=[event(f"e{i}") for i in range(MAX_BATCH + 1)])
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "payload_too_large"
    huge = api.post("/v1/events", data=b"[" + b" " * (1 << 20) + b"]", headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    big_event = api.post("/v1/events", json=event("big", url="/" + "x" * 3000))
    assert big_event.status_code == 400
    broken = api.post("/v1/events", data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_body"
    assert files(landing) == []


def test_concurrent_requests_share_files_and_every_event_is_written_once(tmp_path):
    import asyncio

    from activations.serve.events import EventWriter

    writer = EventWriter(tmp_path / "landing")
    batches = [[{"event_id": f"c{i}-{j}", "event_type": "page_view"} for j in range(3)] for i in range(64)]

    async def requests():
        return await asyncio.gather(*(writer.append(b) for b in batches))

    paths = asyncio.run(requests())
    assert all(p is not None and p.exists() for p in paths)  # each call returns once its rows are on disk
    written = [line for path in files(tmp_path / "landing") for line in path.read_text().splitlines()]
    assert sorted(written) == sorted(f'{{"event_id":"c{i}-{j}","event_type":"page_view"}}'
                                     for i in range(64) for j in range(3))
    assert len(files(tmp_path / "landing")) < 64  # group commit: requests waiting together share a file


def test_the_same_event_from_concurrent_requests_is_written_once(api, landing):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.as_key("server-key").post("/v1/events", json=event("same")).json(),
                                range(16)))
    assert sorted(a["results"][0]["status"] for a in answers) == ["accepted"] + ["duplicate"] * 15
    assert sum(len(p.read_text().splitlines()) for p in files(landing)) == 1


def test_events_that_cannot_be_written_are_not_acknowledged(api, landing):
    landing.mkdir(parents=True)
    (landing / "events").write_text("a file where the events folder should be")
    answer = api.post("/v1/events", json=event("lost"))
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "not_written"
    assert answer.headers["Retry-After"] == "5"
    (landing / "events").unlink()
    retried = api.post("/v1/events", json=event("lost"))  # not remembered as written: the retry is accepted
    assert retried.status_code == 200 and retried.json()["accepted"] == 1


def test_a_replay_after_a_restart_is_still_a_duplicate(serving, landing):
    from activations.serve.app import create_app, running_server
    from activations.serve.keys import KeysConfig
    from tests.serve.conftest import KEYS, Client

    def started():
        return running_server(create_app(KeysConfig(list(KEYS.values())), serving, landing, clock=lambda: NOW))

    with started() as url:
        assert Client(url).post("/v1/events", json=[event("r1"), event("r2")]).json()["accepted"] == 2
    with started() as url:  # the client never saw the answer and retries against the restarted server
        again = Client(url).post("/v1/events", json=[event("r1"), event("r3")]).json()
    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted"]
    assert sorted(json.loads(line)["event_id"] for p in files(landing) for line in p.read_text().splitlines()) == \
        ["r1", "r2", "r3"]


def test_an_oversized_body_without_a_length_is_cut_off(api, landing):
    def chunks():  # chunked transfer: the server cannot refuse it up front, it stops reading at the limit
        for _ in range(20):
            yield b" " * (64 << 10)

    answer = api.post("/v1/events", data=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    assert files(landing) == []
