"""The sandbox's Meta Conversions API: Meta's deduplication, test events, form posts, throttling, restarts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
from sandbox_helpers import TOKENS, auth, set_faults, sha, state

from sandbox import server

PIXEL = "777"


def event(event_id: str, **changes) -> dict:
    return {"event_name": "Purchase", "event_time": int(time.time()) - 60, "event_id": event_id,
            "action_source": "website", "user_data": {"em": [sha("a@example.com")]},
            "custom_data": {"value": 12.5, "currency": "EUR"}, **changes}


def post(url: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(f"{url}/meta_conversions/v21.0/{PIXEL}/events", json=body, **auth("meta_conversions"),
                         timeout=10, **kwargs)


def test_an_event_sent_twice_is_kept_once_as_meta_deduplicates(sandbox: str) -> None:
    assert post(sandbox, {"data": [event("O1"), event("O2")]}).json()["events_received"] == 2
    assert post(sandbox, {"data": [event("O1"), event("O1", event_name="Lead")]}).json()["events_received"] == 2
    pixel = state(sandbox, "meta_conversions")["pixels"][PIXEL]
    assert (pixel["received"], pixel["duplicates"]) == (4, 1)
    assert sorted(pixel["events"]) == ["Lead:O1", "Purchase:O1", "Purchase:O2"]


def test_test_events_are_kept_apart(sandbox: str) -> None:
    assert post(sandbox, {"data": [event("O1")], "test_event_code": "TEST123"}).status_code == 200
    pixel = state(sandbox, "meta_conversions")["pixels"][PIXEL]
    assert pixel["events"] == {} and [e["event_id"] for e in pixel["test_events"]] == ["O1"]


def test_a_form_post_with_the_token_as_a_parameter_is_read(sandbox: str) -> None:
    answer = requests.post(f"{sandbox}/meta_conversions/v21.0/{PIXEL}/events", timeout=10,
                           data={"data": json.dumps([event("O1")]), "access_token": TOKENS["meta_conversions"]})
    assert answer.status_code == 200 and answer.json()["events_received"] == 1


def test_bad_events_refuse_the_request_with_their_index(sandbox: str) -> None:
    cases = [
        (event("x", event_time=int(time.time()) + 3600), 2804004),  # in the future
        (event("x", action_source="billboard"), 2804050),
        (event("x", user_data={}), 2804019),
        (event("x", custom_data={"value": "12"}), 2804019),
        (event("x", user_data={"em": ["a@example.com"]}), 2804022),  # not hashed
    ]
    for bad, subcode in cases:
        error = post(sandbox, {"data": [event("ok"), bad]}).json()["error"]
        assert (error["code"], error["error_subcode"], error["error_data"]) == (100, subcode, {"event_index": 1}), bad
    assert state(sandbox, "meta_conversions")["pixels"] == {}


def test_throttling_is_signalled_as_meta_does(sandbox: str) -> None:
    set_faults(sandbox, destination="meta_conversions", rate_limit_rate=1.0)
    answer = post(sandbox, {"data": [event("O1")]})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 17
    usage = json.loads(answer.headers["X-Business-Use-Case-Usage"])
    assert usage["meta_conversions"][0]["type"] == "ads_management"


def test_events_survive_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        post(url, {"data": [event("O1"), event("O2")]})
        before = state(url, "meta_conversions")["pixels"]
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        assert state(url, "meta_conversions")["pixels"] == before
        post(url, {"data": [event("O1")]})
        assert state(url, "meta_conversions")["pixels"][PIXEL]["duplicates"] == 1
