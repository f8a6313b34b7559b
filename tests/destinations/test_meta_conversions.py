"""Meta's Conversions API against the sandbox, over real loopback HTTP: events in with hashed customer
information, Meta's normalization, its whole-request refusals and the 1,000-event limit."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import requests

from activations.destinations.base import BatchRefused
from activations.destinations.identifiers import prepare_identifiers

from .conftest import TOKENS
from .rows import people, prepared
from .setups import FIELDS, OPTIONS, batch_for

PIXEL = OPTIONS["meta_conversions"]["pixel_id"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def held(sandbox) -> dict[str, dict]:
    """event_id -> the event the sandbox kept for the pixel."""
    pixel = sandbox.state("meta_conversions")["pixels"].get(PIXEL, {"events": {}})
    return {event["event_id"]: event for event in pixel["events"].values()}


def client_for(sandbox, **options):
    return sandbox.client("meta_conversions", **{**OPTIONS["meta_conversions"], **options})


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_events_are_sent_with_hashed_customer_information_and_confirmed(sandbox):
    client = client_for(sandbox)
    batch = batch_for(client, 3)
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True] * 3
    events = held(sandbox)
    assert set(events) == {"k0", "k1", "k2"}  # the sync's key is the event_id the browser pixel also sends
    event = events["k1"]
    assert event["event_name"] == "Purchase" and event["action_source"] == "website"
    assert isinstance(event["event_time"], int)
    assert abs(event["event_time"] - (now_utc() - timedelta(hours=2)).replace(tzinfo=UTC).timestamp()) < 60
    assert event["custom_data"] == {"value": 21.0, "currency": "EUR"}
    assert event["user_data"] == {"em": [sha("person1@example.com")], "ph": [sha("393330000001")],
                                  "external_id": [sha("C00001")]}  # external_id hashed too, phone without "+"
    assert client.upload_report().received == 3


def test_identifiers_are_normalized_as_meta_specifies(sandbox):
    """Meta's own examples: the hash is of the normalized value."""
    client = client_for(sandbox)
    frame = pl.DataFrame({
        "_key": ["o1"], "email": ["  Person@Example.com "], "phone": ["+1 (616) 954-78 88"],
        "first_name": ["Valéry"], "last_name": ["Smith-Jones"], "city": ["New York"], "state": ["CA"],
        "zip": ["94035-1234"], "country": ["US"], "gender": ["Female"], "external_id": [" C00042 "],
        **{k: v[:1] for k, v in FIELDS["meta_conversions"](1).items()},
    })
    ready = prepare_identifiers(frame, client.capabilities)
    assert ready.invalid.height == 0
    assert all(r.ok for r in client.send("upsert", ready.valid))
    assert held(sandbox)["o1"]["user_data"] == {
        # Meta's example: Person@Example.com -> this digest
        "em": ["542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"],
        "ph": [sha("16169547888")], "fn": [sha("valéry")], "ln": [sha("smithjones")], "ct": [sha("newyork")],
        "st": [sha("ca")], "zp": [sha("94035")], "country": [sha("us")], "ge": [sha("f")],
        "external_id": [sha("C00042")],
    }


def test_a_row_meta_would_refuse_is_set_aside_and_the_rest_go(sandbox):
    client = client_for(sandbox)
    batch = batch_for(client, 4).with_columns(
        event_time=pl.when(pl.col("_key") == "k1").then(pl.lit(now_utc() - timedelta(days=8)))
        .otherwise(pl.col("event_time")))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True, True]
    assert "more than 7 days" in results[1].reason and results[1].status is None
    assert set(held(sandbox)) == {"k0", "k2", "k3"}
    assert sandbox.state("meta_conversions")["requests"]["requests"] == 1


def test_meta_refusing_the_request_names_the_event_and_nothing_is_kept(sandbox):
    client = client_for(sandbox)
    batch = batch_for(client, 20)
    sandbox.faults("meta_conversions", row_reject_rate=0.2, seed=5)
    with pytest.raises(BatchRefused) as refused:
        client.send("upsert", batch)
    (index, reason), = refused.value.rejected_rows.items()
    assert "rejected by sandbox fault injection" in reason and refused.value.status == 400
    assert held(sandbox) == {}  # one invalid event: Meta processes none of the request
    # The named event is the first one the sandbox refuses: everything before it goes through alone.
    assert all(r.ok for r in client.send("upsert", batch.head(index)))
    assert set(held(sandbox)) == {f"k{i}" for i in range(index)}


def test_the_sandbox_refuses_a_whole_request_for_one_stale_event(sandbox):
    now = int(datetime.now(UTC).timestamp())
    event = {"event_name": "Purchase", "event_time": now, "action_source": "website", "event_id": "a",
             "user_data": {"em": [sha("a@example.com")]}}
    stale = {**event, "event_id": "b", "event_time": now - 8 * 24 * 3600}
    url = f"{sandbox.base}/meta_conversions/v21.0/{PIXEL}/events"
    auth = {"Authorization": f"Bearer {TOKENS['meta_conversions']}"}
    answer = requests.post(url, json={"data": [event, stale]}, headers=auth, timeout=10)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["error_subcode"], error["error_data"]) == (100, 2804003, {"event_index": 1})
    assert held(sandbox) == {}
    unhashed = {**event, "user_data": {"em": ["a@example.com"]}}
    assert requests.post(url, json={"data": [unhashed]}, headers=auth, timeout=10).json()["error"][
        "error_data"] == {"event_index": 0}
    too_many = requests.post(url, json={"data": [event] * 1001}, headers=auth, timeout=10)
    assert too_many.status_code == 400 and "1000" in too_many.json()["error"]["message"].replace(",", "")
    answer = requests.post(url, json={"data": [event]}, headers=auth, timeout=10)
    assert answer.json()["events_received"] == 1 and set(held(sandbox)) == {"a"}


def test_an_answer_that_does_not_confirm_every_event_confirms_none(sandbox, monkeypatch):
    client = client_for(sandbox)
    batch = batch_for(client, 3)
    original = client.http.request

    def short_count(*args, **kwargs):
        response = original(*args, **kwargs)
        response._content = b'{"events_received": 2, "messages": []}'
        return response

    monkeypatch.setattr(client.http, "request", short_count)
    results = client.send("upsert", batch)
    assert not any(r.ok for r in results) and "events_received 2 for 3" in results[0].reason


def test_the_token_is_never_in_errors_or_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(sandbox)
    sandbox.faults("meta_conversions", row_reject_rate=1.0)
    with pytest.raises(BatchRefused) as refused:
        client.send("upsert", batch_for(client, 2))
    texts = [str(refused.value), repr(refused.value), *refused.value.rejected_rows.values(), repr(client),
             caplog.text]
    assert all(TOKENS["meta_conversions"] not in text for text in texts)


def test_declared_limits(sandbox):
    client = client_for(sandbox)
    caps = client.capabilities
    assert (caps.batch_size, caps.modes, caps.required_fields) == (
        1000, frozenset({"insert"}), ("event_name", "event_time", "action_source"))
    with pytest.raises(ValueError):
        client.send("remove", prepared(client, people(1, **{k: v[:1] for k, v in FIELDS["meta_conversions"](1).items()})))
