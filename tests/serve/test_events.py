"""POST /v1/events: per-event validation, durable files in the landing folder that ingestion reads."""

from __future__ import annotations

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
    from concurrent.futures import ThreadPoolExecutor

    from activations.serve.events import EventWriter

    writer = EventWriter(tmp_path / "landing")
    batches = [[{"event_id": f"c{i}-{j}", "event_type": "page_view"} for j in range(3)] for i in range(64)]
    with ThreadPoolExecutor(16) as pool:
        paths = list(pool.map(writer.write, batches))
    assert all(p is not None and p.exists() for p in paths)  # each call returns once its rows are on disk
    written = [line for path in files(tmp_path / "landing") for line in path.read_text().splitlines()]
    assert sorted(written) == sorted(f'{{"event_id":"c{i}-{j}","event_type":"page_view"}}'
                                     for i in range(64) for j in range(3))
    assert len(files(tmp_path / "landing")) <= 64
