"""Mailchimp: batch subscribe, idempotent member PUT, static segments, connection cap."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import requests
from sandbox_helpers import auth, set_faults, state

LIST = "/mailchimp/3.0/lists/aud1"


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def subscribe(*emails: str, update_existing: bool = True) -> dict:
    return {
        "members": [{"email_address": e, "status": "subscribed"} for e in emails],
        "update_existing": update_existing,
    }


def test_batch_member_put_and_segment(sandbox: str) -> None:
    answer = requests.post(sandbox + LIST, json=subscribe("ada@example.com", "bob@example.com"), **auth("mailchimp"))
    assert answer.status_code == 200
    body = answer.json()
    assert [m["email_address"] for m in body["new_members"]] == ["ada@example.com", "bob@example.com"]
    assert body["updated_members"] == [] and body["error_count"] == 0

    put = {"email_address": "cy@example.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Cy"}}
    for _ in range(2):  # idempotent
        member = requests.put(f"{sandbox}{LIST}/members/{md5('cy@example.com')}", json=put, **auth("mailchimp"))
        assert member.status_code == 200
        assert member.json()["id"] == md5("cy@example.com")
    read = requests.get(f"{sandbox}{LIST}/members/{md5('cy@example.com')}", **auth("mailchimp")).json()
    assert read["merge_fields"] == {"FNAME": "Cy"}

    segment = f"{sandbox}{LIST}/segments/42"
    added = requests.post(
        segment, json={"members_to_add": ["ada@example.com", "cy@example.com"]}, **auth("mailchimp")
    ).json()
    assert added["total_added"] == 2 and added["error_count"] == 0
    removed = requests.post(segment, json={"members_to_remove": ["ada@example.com"]}, **auth("mailchimp")).json()
    assert removed["total_removed"] == 1

    held = state(sandbox, "mailchimp")["lists"]["aud1"]
    assert set(held["members"]) == {md5("ada@example.com"), md5("bob@example.com"), md5("cy@example.com")}
    assert held["segments"] == {"42": [md5("cy@example.com")]}


def test_auth_is_refused_with_problem_details(sandbox: str) -> None:
    for kwargs in ({}, auth("mailchimp", "wrong-key")):
        answer = requests.post(sandbox + LIST, json=subscribe("a@example.com"), **kwargs)
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["status"] == 401 and answer.json()["title"].startswith("API Key")


def test_more_than_500_members_is_refused(sandbox: str) -> None:
    answer = requests.post(
        sandbox + LIST, json=subscribe(*[f"u{i}@example.com" for i in range(501)]), **auth("mailchimp")
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "members"
    segment = requests.post(
        f"{sandbox}{LIST}/segments/1",
        json={"members_to_add": [f"u{i}@example.com" for i in range(501)]},
        **auth("mailchimp"),
    )
    assert segment.status_code == 400
    assert state(sandbox, "mailchimp")["lists"].get("aud1", {}).get("members", {}) == {}


def test_rejected_rows_come_back_in_errors_with_200(sandbox: str) -> None:
    requests.post(sandbox + LIST, json=subscribe("ada@example.com"), **auth("mailchimp"))
    body = requests.post(
        sandbox + LIST,
        json=subscribe("ada@example.com", "not-an-email", "new@example.com", update_existing=False),
        **auth("mailchimp"),
    ).json()
    assert body["error_count"] == 2
    assert {(e["email_address"], e["error_code"]) for e in body["errors"]} == {
        ("ada@example.com", "ERROR_CONTACT_EXISTS"),
        ("not-an-email", "ERROR_GENERIC"),
    }
    assert [m["email_address"] for m in body["new_members"]] == ["new@example.com"]
    segment = requests.post(
        f"{sandbox}{LIST}/segments/3", json={"members_to_add": ["stranger@example.com"]}, **auth("mailchimp")
    )
    assert segment.json()["errors"][0]["email_addresses"] == ["stranger@example.com"]


def test_more_than_10_simultaneous_connections_get_429(sandbox: str) -> None:
    set_faults(sandbox, destination="mailchimp", latency_ms=1000)

    def one(i: int) -> requests.Response:
        return requests.post(sandbox + LIST, json=subscribe(f"u{i}@example.com"), **auth("mailchimp"), timeout=10)

    with ThreadPoolExecutor(max_workers=14) as pool:
        answers = list(pool.map(one, range(14)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 10
    assert codes.count(429) == 4
    limited = next(a for a in answers if a.status_code == 429)
    assert "simultaneous connections" in limited.json()["detail"]
