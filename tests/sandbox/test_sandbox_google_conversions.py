"""The sandbox's Data Manager events:ingest: Google's deduplication by transactionId, fast-fail refusals
naming every bad event, the 2,000 limit, auth and quota as the audiences', events kept across a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sandbox_helpers import TOKENS, auth, set_faults, sha, state

from sandbox import server

INGEST = "/google_conversions/v1/events:ingest"
ACTION = "555"


def event(transaction_id: str, **changes) -> dict:
    when = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"transactionId": transaction_id, "eventTimestamp": when, "eventSource": "WEB",
            "conversionValue": 12.5, "currency": "EUR",
            "userData": {"userIdentifiers": [{"emailAddress": sha("ada@example.com")}]}, **changes}


def post(url: str, *events: dict, **extra) -> requests.Response:
    body = {"destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "123"},
                              "productDestinationId": ACTION}],
            "events": list(events), "encoding": "HEX",
            "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}, **extra}
    return requests.post(url + INGEST, json=body, **auth("google_conversions"), timeout=10)


def test_a_transaction_sent_twice_is_counted_once(sandbox: str) -> None:
    answer = post(sandbox, event("O1"), event("O2"))
    assert answer.status_code == 200 and set(answer.json()) == {"requestId"}
    assert post(sandbox, event("O1", conversionValue=99)).status_code == 200
    action = state(sandbox, "google_conversions")["conversion_actions"][ACTION]
    assert (action["received"], action["duplicates"]) == (3, 1)
    assert sorted(action["events"]) == ["O1", "O2"] and action["events"]["O1"]["conversionValue"] == 12.5


def test_a_click_id_alone_is_enough_and_validate_only_keeps_nothing(sandbox: str) -> None:
    assert post(sandbox, event("O1", userData=None, adIdentifiers={"gclid": "Cj0KCQ"})).status_code == 200
    assert post(sandbox, event("O2"), validateOnly=True).status_code == 200
    assert sorted(state(sandbox, "google_conversions")["conversion_actions"][ACTION]["events"]) == ["O1"]


def test_bad_events_fail_the_request_fast_naming_each(sandbox: str) -> None:
    future = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bad = [
        event("a", eventTimestamp=future),
        event("b", eventTimestamp="yesterday"),
        event("c", userData={"userIdentifiers": [{"emailAddress": "ada@example.com"}]}),  # not hashed
        event("d", userData=None),  # no user data and no click id
        event("e", currency="euro"),
        event("f", eventSource="BILLBOARD"),
        event(""),
    ]
    answer = post(sandbox, event("ok"), *bad)
    error = answer.json()["error"]
    assert (answer.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    fields = [v["field"] for v in error["details"][1]["fieldViolations"]]
    named = sorted({int(f.split("[")[1].split("]")[0]) for f in fields})
    assert named == list(range(1, 8)), fields
    assert state(sandbox, "google_conversions")["conversion_actions"] == {}  # none of the request kept


def test_limits_auth_and_quota(sandbox: str) -> None:
    too_many = post(sandbox, *[event(f"O{i}") for i in range(2_001)])
    assert too_many.status_code == 400 and "2,000" in too_many.text
    anonymous = requests.post(sandbox + INGEST, json={}, timeout=10)
    assert (anonymous.status_code, anonymous.json()["error"]["status"]) == (401, "UNAUTHENTICATED")
    set_faults(sandbox, destination="google_conversions", rate_limit_rate=1.0)
    throttled = post(sandbox, event("O1"))
    assert (throttled.status_code, throttled.json()["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")


def test_events_survive_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        post(url, event("O1"), event("O2"))
        before = state(url, "google_conversions")["conversion_actions"]
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        assert state(url, "google_conversions")["conversion_actions"] == before
        post(url, event("O1"))
        assert state(url, "google_conversions")["conversion_actions"][ACTION]["duplicates"] == 1
