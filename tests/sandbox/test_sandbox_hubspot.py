"""HubSpot: batch upsert by email, list memberships by record id, 10 s rolling limit."""

from __future__ import annotations

import time

import requests
from sandbox_helpers import auth, set_faults, state

from sandbox.holdings import holdings

UPSERT = "/hubspot/crm/v3/objects/contacts/batch/upsert"
LISTS = "/hubspot/crm/v3/lists"


def list_spec(name: str, processing: str = "MANUAL") -> dict:
    return {"name": name, "objectTypeId": "0-1", "processingType": processing}


def members(*emails: str) -> dict:
    return {"inputs": [{"id": e, "idProperty": "email", "properties": {"firstname": e.split("@")[0]}} for e in emails]}


def test_upsert_gives_stable_ids_and_lists_hold_them(sandbox: str) -> None:
    first = requests.post(sandbox + UPSERT, json=members("ada@example.com", "bob@example.com"), **auth("hubspot"))
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "COMPLETE" and "errors" not in body
    ids = {r["properties"]["email"]: r["id"] for r in body["results"]}
    assert all(r["new"] for r in body["results"])
    assert first.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "189"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in first.headers

    again = requests.post(sandbox + UPSERT, json=members("ADA@example.com"), **auth("hubspot")).json()
    assert again["results"][0]["id"] == ids["ada@example.com"]
    assert again["results"][0]["new"] is False

    made = requests.post(sandbox + LISTS, json=list_spec("Champions"), **auth("hubspot"))
    assert made.status_code == 200
    list_id = made.json()["list"]["listId"]
    assert list_id.isdigit() and made.json()["list"]["processingType"] == "MANUAL"
    path = f"{sandbox}/hubspot/crm/v3/lists/{list_id}/memberships/add-and-remove"
    added = requests.put(path, json={"recordIdsToAdd": list(ids.values()) + ["999999"]}, **auth("hubspot"))
    assert added.status_code == 200
    assert added.json() == {
        "recordIdsMissing": ["999999"],
        "recordsIdsAdded": list(ids.values()),
        "recordIdsRemoved": [],
    }
    removed = requests.put(path, json={"recordIdsToRemove": [ids["bob@example.com"]]}, **auth("hubspot")).json()
    assert removed["recordIdsRemoved"] == [ids["bob@example.com"]]

    held = state(sandbox, "hubspot")
    assert set(held["contacts"]) == {"ada@example.com", "bob@example.com"}
    assert held["contacts"]["ada@example.com"]["properties"] == {"firstname": "ADA"}
    assert held["lists"] == {list_id: [ids["ada@example.com"]]}
    assert held["requests"]["responses"] == {"200": 5}


def test_auth_is_refused_in_hubspot_shape(sandbox: str) -> None:
    missing = requests.post(sandbox + UPSERT, json=members("a@example.com"))
    wrong = requests.post(sandbox + UPSERT, json=members("a@example.com"), **auth("hubspot", "nope"))
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.json()["category"] == "INVALID_AUTHENTICATION"
        assert answer.json()["status"] == "error"
    assert state(sandbox, "hubspot")["contacts"] == {}


def test_more_than_100_inputs_is_refused(sandbox: str) -> None:
    answer = requests.post(
        sandbox + UPSERT, json=members(*[f"u{i}@example.com" for i in range(101)]), **auth("hubspot")
    )
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert state(sandbox, "hubspot")["contacts"] == {}


def test_duplicate_ids_in_a_batch_are_refused(sandbox: str) -> None:
    answer = requests.post(sandbox + UPSERT, json=members("a@example.com", "A@example.com"), **auth("hubspot"))
    assert answer.status_code == 400
    assert "Duplicate IDs" in answer.json()["message"]


def test_invalid_email_is_a_207_row_error_and_the_rest_is_applied(sandbox: str) -> None:
    answer = requests.post(sandbox + UPSERT, json=members("ok@example.com", "not-an-email"), **auth("hubspot"))
    assert answer.status_code == 207
    body = answer.json()
    assert body["numErrors"] == 1
    (error,) = body["errors"]
    assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
    assert error["context"] == {"ids": ["not-an-email"]}
    assert "INVALID_EMAIL" in error["message"]
    assert [r["properties"]["email"] for r in body["results"]] == ["ok@example.com"]
    assert list(state(sandbox, "hubspot")["contacts"]) == ["ok@example.com"]


def test_rolling_window_answers_429_ten_secondly_then_recovers(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"hubspot": {"requests": 3, "window_seconds": 0.5}})
    codes = [requests.post(url + UPSERT, json=members("a@example.com"), **auth("hubspot")) for _ in range(4)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    limited = codes[-1]
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
    assert limited.headers["Retry-After"] == "1"  # whole seconds until the window frees a slot
    time.sleep(0.55)
    assert requests.post(url + UPSERT, json=members("a@example.com"), **auth("hubspot")).status_code == 200


def test_daily_limit_answers_429_daily(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"hubspot": {"daily": 2}})
    codes = [requests.post(url + UPSERT, json=members("a@example.com"), **auth("hubspot")) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[-1].json()["policyName"] == "DAILY"
    assert codes[-1].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_injected_row_rejections_use_the_207_shape_and_repeat_on_retry(sandbox: str) -> None:
    set_faults(sandbox, destination="hubspot", row_reject_rate=0.5, seed=7)
    emails = [f"user{i}@example.com" for i in range(40)]
    first = requests.post(sandbox + UPSERT, json=members(*emails), **auth("hubspot")).json()
    rejected = sorted(e["context"]["ids"][0] for e in first["errors"])
    assert 8 <= len(rejected) <= 32
    retry = requests.post(sandbox + UPSERT, json=members(*rejected), **auth("hubspot")).json()
    assert sorted(e["context"]["ids"][0] for e in retry["errors"]) == rejected
    assert retry["results"] == []


def test_lists_are_found_by_name_and_unknown_ids_are_refused(sandbox: str) -> None:
    by_name = f"{sandbox}/hubspot/crm/v3/lists/object-type-id/0-1/name/"
    assert requests.get(by_name + "Champions", **auth("hubspot")).status_code == 404
    made = requests.post(sandbox + LISTS, json=list_spec("Champions"), **auth("hubspot")).json()["list"]
    found = requests.get(by_name + "champions", **auth("hubspot"))  # names are not case sensitive
    assert found.status_code == 200 and found.json()["list"]["listId"] == made["listId"]
    twice = requests.post(sandbox + LISTS, json=list_spec("CHAMPIONS"), **auth("hubspot"))
    assert twice.status_code == 400 and twice.json()["category"] == "VALIDATION_ERROR"

    # HubSpot addresses lists by their numeric id: a name, or an id never made, is not found.
    for list_id in ("attiva-audiences", "999"):
        answer = requests.put(f"{sandbox}{LISTS}/{list_id}/memberships/add-and-remove",
                              json={"recordIdsToAdd": ["1001"]}, **auth("hubspot"))
        assert answer.status_code == 404 and answer.json()["category"] == "OBJECT_NOT_FOUND"
    dynamic = requests.post(sandbox + LISTS, json=list_spec("Recent", "DYNAMIC"), **auth("hubspot")).json()["list"]
    answer = requests.put(f"{sandbox}{LISTS}/{dynamic['listId']}/memberships/add-and-remove",
                          json={"recordIdsToAdd": ["1001"]}, **auth("hubspot"))
    assert answer.status_code == 400 and "MANUAL" in answer.json()["message"]
    held = state(sandbox, "hubspot")
    assert held["lists"] == {made["listId"]: [], dynamic["listId"]: []}
    assert holdings("hubspot", held) == {"contacts": 0, "list Champions": 0, "list Recent": 0}  # by name
