"""Meta custom audiences: hashed rows added, removed, replaced; Graph-style errors and throttling."""

from __future__ import annotations

import json

import requests
from sandbox_helpers import TOKENS, auth, sha, state

USERS = "/meta/v21.0/6001/users"


def payload(*rows: list[str], schema=("EMAIL", "PHONE")) -> dict:
    return {"payload": {"schema": list(schema), "data": [list(r) for r in rows]}}


def audience(url: str, audience_id: str = "6001") -> list[dict]:
    return state(url, "meta")["audiences"].get(audience_id, {}).get("members", [])


def test_add_and_remove_hashed_users(sandbox: str) -> None:
    rows = [[sha("a@example.com"), sha("15551230001")], [sha("b@example.com"), ""], [sha("c@example.com"), ""]]
    session = {"session_id": 99, "batch_seq": 1, "last_batch_flag": True, "estimated_num_total": 3}
    answer = requests.post(
        sandbox + USERS, json={**payload(*rows), "session": session}, params={"access_token": TOKENS["meta"]}
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "audience_id": "6001",
        "session_id": "99",
        "num_received": 3,
        "num_invalid_entries": 0,
        "invalid_entry_samples": {},
    }
    assert "X-Business-Use-Case-Usage" in answer.headers
    # Removal matches by any identifier: the phone alone removes the first person.
    removed = requests.delete(sandbox + USERS, json=payload(["", sha("15551230001")]), **auth("meta"))
    assert removed.status_code == 200
    assert sorted(m["EMAIL"] for m in audience(sandbox)) == sorted([sha("b@example.com"), sha("c@example.com")])


def test_form_encoded_parameters_are_accepted(sandbox: str) -> None:
    form = {
        "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [sha("d@example.com")]}),
        "access_token": TOKENS["meta"],
    }
    answer = requests.post(sandbox + USERS, data=form)
    assert answer.status_code == 200, answer.text
    assert audience(sandbox) == [{"EMAIL": sha("d@example.com")}]


def test_auth_errors_are_graph_errors(sandbox: str) -> None:
    missing = requests.post(sandbox + USERS, json=payload([sha("a@example.com"), ""]))
    wrong = requests.post(sandbox + USERS, json=payload([sha("a@example.com"), ""]), params={"access_token": "bad"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == 2500
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == 190
    assert wrong.json()["error"]["type"] == "OAuthException"
    assert "fbtrace_id" in wrong.json()["error"]


def test_more_than_10000_rows_is_refused(sandbox: str) -> None:
    rows = [[sha(f"u{i}@example.com")] for i in range(10_001)]
    answer = requests.post(sandbox + USERS, json=payload(*rows, schema=["EMAIL"]), **auth("meta"))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    assert audience(sandbox) == []


def test_unhashed_or_malformed_rows_are_counted_invalid(sandbox: str) -> None:
    rows = [
        [sha("ok@example.com"), ""],
        ["ada@example.com", ""],  # not hashed
        [sha("x@example.com").upper(), ""],  # upper-case hex
        ["", ""],  # empty
        [sha("y@example.com")],  # wrong width
    ]
    body = requests.post(sandbox + USERS, json=payload(*rows), **auth("meta")).json()
    assert body["num_received"] == 5
    assert body["num_invalid_entries"] == 4
    assert "ada@example.com" in body["invalid_entry_samples"]
    assert audience(sandbox) == [{"EMAIL": sha("ok@example.com")}]


def test_rate_limit_is_a_400_with_code_17_and_usage_header(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"meta": {"requests": 2, "window_seconds": 120}})
    answers = [requests.post(url + USERS, json=payload([sha("a@example.com"), ""]), **auth("meta")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 400]
    error = answers[-1].json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (17, 2446079, "OAuthException")
    usage = json.loads(answers[-1].headers["X-Business-Use-Case-Usage"])
    (entry,) = next(iter(usage.values()))
    assert entry["estimated_time_to_regain_access"] == 2  # minutes, rounded up
    assert entry["call_count"] == 100


def test_usersreplace_swaps_members_when_the_session_ends(sandbox: str) -> None:
    requests.post(
        sandbox + USERS, json=payload([sha("old1@example.com"), ""], [sha("old2@example.com"), ""]), **auth("meta")
    )
    replace = "/meta/v21.0/6001/usersreplace"
    first = {
        **payload([sha("new1@example.com"), ""]),
        "session": {"session_id": 5, "batch_seq": 1, "last_batch_flag": False},
    }
    assert requests.post(sandbox + replace, json=first, **auth("meta")).status_code == 200
    assert len(audience(sandbox)) == 2  # still the old members while the session is open
    last = {
        **payload([sha("new2@example.com"), ""]),
        "session": {"session_id": 5, "batch_seq": 2, "last_batch_flag": True},
    }
    assert requests.post(sandbox + replace, json=last, **auth("meta")).json()["session_id"] == "5"
    assert sorted(m["EMAIL"] for m in audience(sandbox)) == sorted([sha("new1@example.com"), sha("new2@example.com")])
    no_session = requests.post(sandbox + replace, json=payload([sha("x@example.com"), ""]), **auth("meta"))
    assert no_session.status_code == 400 and no_session.json()["error"]["code"] == 100
