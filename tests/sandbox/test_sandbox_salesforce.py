"""Salesforce: sObject Collections upsert on an external id, per-row results, daily allocation."""

from __future__ import annotations

import requests
from sandbox_helpers import auth, state

PATH = "/salesforce/services/data/v61.0/composite/sobjects/Contact/Ext__c"


def record(ext: str, **fields) -> dict:
    return {"attributes": {"type": "Contact"}, "Ext__c": ext, **fields}


def test_upsert_answers_per_row_in_input_order_and_keeps_ids(sandbox: str) -> None:
    body = {
        "allOrNone": False,
        "records": [record("A1", Email="a@example.com", LastName="A"), record("A2", LastName="B")],
    }
    answer = requests.patch(sandbox + PATH, json=body, **auth("salesforce"))
    assert answer.status_code == 200
    rows = answer.json()
    assert [r["success"] for r in rows] == [True, True]
    assert [r["created"] for r in rows] == [True, True]
    assert all(len(r["id"]) == 18 and r["id"].startswith("003") for r in rows)
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=1/100000"

    again = requests.patch(
        sandbox + PATH, json={"allOrNone": False, "records": [record("A1", LastName="Z")]}, **auth("salesforce")
    )
    assert again.json() == [{"id": rows[0]["id"], "success": True, "created": False, "errors": []}]

    held = state(sandbox, "salesforce")["objects"]["Contact"]["Ext__c"]
    assert set(held) == {"A1", "A2"}
    assert held["A1"]["LastName"] == "Z" and held["A1"]["Email"] == "a@example.com"
    assert held["A1"]["Id"] == rows[0]["id"]


def test_auth_is_refused_with_invalid_session_id(sandbox: str) -> None:
    for kwargs in ({}, auth("salesforce", "wrong")):
        answer = requests.patch(sandbox + PATH, json={"records": [record("A1")]}, **kwargs)
        assert answer.status_code == 401
        assert answer.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_more_than_200_records_is_refused(sandbox: str) -> None:
    body = {"allOrNone": False, "records": [record(f"X{i}") for i in range(201)]}
    answer = requests.patch(sandbox + PATH, json=body, **auth("salesforce"))
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert state(sandbox, "salesforce")["objects"] == {}


def test_row_errors_come_back_in_place(sandbox: str) -> None:
    body = {
        "allOrNone": False,
        "records": [
            record("OK1", Email="ok@example.com"),
            record("BAD", Email="not-an-email"),
            {"attributes": {"type": "Contact"}, "LastName": "no key"},
            {"attributes": {"type": "Lead"}, "Ext__c": "L1"},
            record("DUP"),
            record("DUP"),
        ],
    }
    rows = requests.patch(sandbox + PATH, json=body, **auth("salesforce")).json()
    assert len(rows) == 6
    assert rows[0]["success"] is True
    codes = [r["errors"][0]["statusCode"] if r["errors"] else None for r in rows]
    assert codes == [
        None,
        "INVALID_EMAIL_ADDRESS",
        "MISSING_ARGUMENT",
        "INVALID_TYPE",
        "DUPLICATE_EXTERNAL_ID",
        "DUPLICATE_EXTERNAL_ID",
    ]
    assert rows[1]["errors"][0]["fields"] == ["Email"]
    assert all(r["success"] is False for r in rows[1:])
    assert set(state(sandbox, "salesforce")["objects"]["Contact"]["Ext__c"]) == {"OK1"}


def test_all_or_none_rolls_everything_back(sandbox: str) -> None:
    body = {"allOrNone": True, "records": [record("OK1"), record("BAD", Email="nope")]}
    rows = requests.patch(sandbox + PATH, json=body, **auth("salesforce")).json()
    assert rows[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rows[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert state(sandbox, "salesforce")["objects"] == {}


def test_over_the_allocation_is_403_request_limit_exceeded(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"salesforce": {"requests": 2}})
    answers = [requests.patch(url + PATH, json={"records": [record("A1")]}, **auth("salesforce")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert answers[-1].json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert answers[-1].headers["Sforce-Limit-Info"] == "api-usage=2/2"
