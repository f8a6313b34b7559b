"""Google Data Manager API: audience members ingested and removed, fast-fail validation, quota."""

from __future__ import annotations

import requests
from sandbox_helpers import auth, sha, state

INGEST = "/google/v1/audienceMembers:ingest"
REMOVE = "/google/v1/audienceMembers:remove"


def request(*members: list[dict], list_id: str = "8001", **extra) -> dict:
    return {
        "destinations": [
            {"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "123"}, "productDestinationId": list_id}
        ],
        "audienceMembers": [{"userData": {"userIdentifiers": ids}} for ids in members],
        "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"},
        "encoding": "HEX",
        **extra,
    }


def members_of(url: str, list_id: str = "8001") -> list[dict]:
    return state(url, "google")["user_lists"].get(list_id, {}).get("members", [])


def test_ingest_and_remove(sandbox: str) -> None:
    ada = [{"emailAddress": sha("ada@example.com")}, {"phoneNumber": sha("+15551230001")}]
    bob = [{"emailAddress": sha("bob@example.com")}]
    answer = requests.post(sandbox + INGEST, json=request(ada, bob), **auth("google"))
    assert answer.status_code == 200
    assert set(answer.json()) == {"requestId"}
    assert len(members_of(sandbox)) == 2
    assert state(sandbox, "google")["user_lists"]["8001"]["operating_account"] == {
        "accountType": "GOOGLE_ADS",
        "accountId": "123",
    }

    # Removal matches by any identifier (the phone alone), snake_case is accepted as proto JSON allows.
    body = request([{"phone_number": sha("+15551230001")}])
    body["audience_members"] = body.pop("audienceMembers")
    assert requests.post(sandbox + REMOVE, json=body, **auth("google")).status_code == 200
    assert members_of(sandbox) == [{"emailAddress": [sha("bob@example.com")]}]


def test_validate_only_stores_nothing(sandbox: str) -> None:
    body = request([{"emailAddress": sha("ada@example.com")}], validateOnly=True)
    assert requests.post(sandbox + INGEST, json=body, **auth("google")).status_code == 200
    assert members_of(sandbox) == []


def test_auth_is_refused_unauthenticated(sandbox: str) -> None:
    for kwargs in ({}, auth("google", "nope")):
        answer = requests.post(sandbox + INGEST, json=request([{"emailAddress": sha("a@example.com")}]), **kwargs)
        assert answer.status_code == 401
        assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_oversized_requests_are_refused(sandbox: str) -> None:
    too_many = request(*[[{"emailAddress": sha(f"u{i}@example.com")}] for i in range(10_001)])
    answer = requests.post(sandbox + INGEST, json=too_many, **auth("google"))
    assert answer.status_code == 400
    violation = answer.json()["error"]["details"][1]["fieldViolations"][0]
    assert violation["reason"] == "TOO_MANY_AUDIENCE_MEMBERS"

    eleven = request([{"emailAddress": sha(f"e{i}@example.com")} for i in range(11)])
    answer = requests.post(sandbox + INGEST, json=eleven, **auth("google"))
    assert answer.status_code == 400
    assert answer.json()["error"]["details"][1]["fieldViolations"][0]["reason"] == "TOO_MANY_USER_IDENTIFIERS"
    assert members_of(sandbox) == []


def test_one_bad_member_fails_the_request_naming_its_index(sandbox: str) -> None:
    body = request(
        [{"emailAddress": sha("ok@example.com")}],
        [{"emailAddress": "ada@example.com"}],  # not hex
        [{"emailAddress": "abcd"}],  # hex but not a SHA-256
    )
    answer = requests.post(sandbox + INGEST, json=body, **auth("google"))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "INVALID_ARGUMENT",
        "domain": "datamanager.googleapis.com",
    }
    violations = error["details"][1]["fieldViolations"]
    assert [(v["field"], v["reason"]) for v in violations] == [
        ("audience_members.audience_members[1].user_data.user_identifiers", "INVALID_HEX_ENCODING"),
        ("audience_members.audience_members[2].user_data.user_identifiers", "INVALID_SHA256_FORMAT"),
    ]
    assert members_of(sandbox) == []  # fast-fail: nothing from the request is applied


def test_quota_is_429_resource_exhausted(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"google": {"requests": 2}})
    body = request([{"emailAddress": sha("a@example.com")}])
    answers = [requests.post(url + INGEST, json=body, **auth("google")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert answers[-1].json()["error"]["code"] == 429



def test_enums_may_come_as_numbers_as_proto3_json_allows(sandbox: str) -> None:
    # Google's own client sends `$alt=json;enum-encoding=int`: accountType 1 is GOOGLE_ADS, encoding 1 HEX.
    body = request([{"emailAddress": sha("ada@example.com")}])
    body["destinations"][0]["operatingAccount"]["accountType"] = 1
    body["encoding"] = 1
    body["consent"] = {"adUserData": 1, "adPersonalization": 1}
    assert requests.post(sandbox + INGEST, json=body, **auth("google")).status_code == 200
    assert state(sandbox, "google")["user_lists"]["8001"]["operating_account"]["accountType"] == "GOOGLE_ADS"
    body["destinations"][0]["operatingAccount"]["accountType"] = 0  # ACCOUNT_TYPE_UNSPECIFIED
    refused = requests.post(sandbox + INGEST, json=body, **auth("google"))
    assert refused.status_code == 400 and "is not an account type" in refused.text
