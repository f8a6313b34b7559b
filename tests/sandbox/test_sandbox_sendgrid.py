"""SendGrid: asynchronous contact imports with an errors file, list removal by id, mail send."""

from __future__ import annotations

import csv
import io
import time

import requests
from sandbox_helpers import auth, state

CONTACTS = "/sendgrid/v3/marketing/contacts"


def wait_for_job(url: str, job_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{url}{CONTACTS}/imports/{job_id}", **auth("sendgrid")).json()
        if job["status"] != "pending" or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_import_is_pending_then_completed_and_lists_are_kept(sandbox: str) -> None:
    body = {
        "list_ids": ["list-a"],
        "contacts": [{"email": "ada@example.com", "first_name": "Ada"}, {"email": "bob@example.com"}],
    }
    answer = requests.put(sandbox + CONTACTS, json=body, **auth("sendgrid"))
    assert answer.status_code == 202
    job_id = answer.json()["job_id"]
    assert int(answer.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert answer.headers["X-RateLimit-Limit"] == "600"

    pending = requests.get(f"{sandbox}{CONTACTS}/imports/{job_id}", **auth("sendgrid")).json()
    assert pending["status"] == "pending"
    assert state(sandbox, "sendgrid")["contacts"] == {}  # not visible before the job completes

    job = wait_for_job(sandbox, job_id)
    assert job["status"] == "completed" and job["job_type"] == "upsert"
    assert job["results"] == {
        "requested_count": 2,
        "created_count": 2,
        "updated_count": 0,
        "deleted_count": 0,
        "errored_count": 0,
    }
    held = state(sandbox, "sendgrid")
    assert set(held["contacts"]) == {"ada@example.com", "bob@example.com"}
    assert held["contacts"]["ada@example.com"]["first_name"] == "Ada"

    found = requests.post(
        f"{sandbox}{CONTACTS}/search/emails", json={"emails": ["ada@example.com"]}, **auth("sendgrid")
    )
    ada_id = found.json()["result"]["ada@example.com"]["contact"]["id"]
    assert held["lists"]["list-a"] == [ada_id, held["contacts"]["bob@example.com"]["id"]]
    removed = requests.delete(
        f"{sandbox}/sendgrid/v3/marketing/lists/list-a/contacts", params={"contact_ids": ada_id}, **auth("sendgrid")
    )
    assert removed.status_code == 202 and "job_id" in removed.json()
    assert state(sandbox, "sendgrid")["lists"]["list-a"] == [held["contacts"]["bob@example.com"]["id"]]


def test_errored_rows_are_listed_in_the_errors_url_csv(sandbox: str) -> None:
    contacts = [{"email": "ok@example.com"}, {"email": "not-an-email"}, {"first_name": "no email"}]
    job_id = requests.put(sandbox + CONTACTS, json={"contacts": contacts}, **auth("sendgrid")).json()["job_id"]
    job = wait_for_job(sandbox, job_id)
    assert job["status"] == "errored"
    assert job["results"]["errored_count"] == 2 and job["results"]["created_count"] == 1
    errors_file = requests.get(job["results"]["errors_url"])
    assert errors_file.status_code == 200
    rows = list(csv.DictReader(io.StringIO(errors_file.text)))
    assert [(r["index"], r["email"]) for r in rows] == [("1", "not-an-email"), ("2", "")]
    assert all(r["error"] for r in rows)


def test_mail_send_is_accepted_and_stored(sandbox: str) -> None:
    message = {
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "from": {"email": "shop@example.com"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi Ada"}],
    }
    answer = requests.post(f"{sandbox}/sendgrid/v3/mail/send", json=message, **auth("sendgrid"))
    assert answer.status_code == 202 and answer.content == b""
    assert answer.headers["X-Message-Id"]
    held = state(sandbox, "sendgrid")
    assert held["sent_mail_count"] == 1
    assert held["mail"][0]["message"] == message


def test_auth_is_refused_in_errors_shape(sandbox: str) -> None:
    for kwargs in ({}, auth("sendgrid", "SG.wrong")):
        answer = requests.put(sandbox + CONTACTS, json={"contacts": [{"email": "a@example.com"}]}, **kwargs)
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["field"] is None


def test_oversized_requests_are_refused(sandbox: str) -> None:
    many = {"contacts": [{"email": f"u{i}@x.io"} for i in range(30_001)]}
    assert requests.put(sandbox + CONTACTS, json=many, **auth("sendgrid")).status_code == 400
    heavy = {"contacts": [{"email": f"u{i}@example.com", "custom_fields": {"blob": "x" * 400}} for i in range(15_000)]}
    assert requests.put(sandbox + CONTACTS, json=heavy, **auth("sendgrid")).status_code == 413
    message = {
        "personalizations": [{"to": [{"email": f"u{i}@example.com"}]} for i in range(1_001)],
        "from": {"email": "shop@example.com"},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "x"}],
    }
    answer = requests.post(f"{sandbox}/sendgrid/v3/mail/send", json=message, **auth("sendgrid"))
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "personalizations"
    assert state(sandbox, "sendgrid")["jobs"] == {} and state(sandbox, "sendgrid")["sent_mail_count"] == 0


def test_rate_limit_is_429_with_reset_epoch(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"sendgrid": {"requests": 2, "window_seconds": 30}})
    answers = [
        requests.put(url + CONTACTS, json={"contacts": [{"email": "a@example.com"}]}, **auth("sendgrid"))
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[-1].json() == {"errors": [{"field": None, "message": "too many requests"}]}
    assert answers[-1].headers["X-RateLimit-Remaining"] == "0"
    assert 25 <= int(answers[-1].headers["X-RateLimit-Reset"]) - time.time() <= 31


def test_email_activity_finds_messages_by_custom_arg_as_sendgrid_does(sandbox: str) -> None:
    """`GET /v3/messages?query=unique_args['name']="value"`: how a sender learns whether a message of
    its own was accepted (the messaging recovery's question); an unparseable query is a 400."""
    for n in (1, 2):
        message = {"personalizations": [{"to": [{"email": f"act{n}@example.com"}]}], "from": {"email": "s@example.com"},
                   "subject": f"Activity {n}", "content": [{"type": "text/plain", "value": "hi"}],
                   "custom_args": {"attiva_message_id": f"activity-test.{n}@attiva"}}
        sent = requests.post(f"{sandbox}/sendgrid/v3/mail/send", json=message, **auth("sendgrid"))
        assert sent.status_code == 202

    def search(query: str, limit: int = 10) -> requests.Response:
        return requests.get(f"{sandbox}/sendgrid/v3/messages", params={"query": query, "limit": limit},
                            **auth("sendgrid"))

    [found] = search("unique_args['attiva_message_id']=\"activity-test.1@attiva\"").json()["messages"]
    assert found["to_email"] == "act1@example.com" and found["subject"] == "Activity 1" and found["msg_id"]
    assert found["status"] == "delivered"
    both = search("(unique_args['attiva_message_id']=\"activity-test.1@attiva\") OR "
                  "(unique_args['attiva_message_id']=\"activity-test.2@attiva\")").json()["messages"]
    assert [m["to_email"] for m in both] == ["act2@example.com", "act1@example.com"]  # most recent first
    assert search(f"msg_id=\"{found['msg_id']}\"").json()["messages"] == [found]
    assert search("unique_args['attiva_message_id']=\"never-sent@attiva\"").json() == {"messages": []}
    assert search("unique_args['attiva_message_id']=\"activity-test.1@attiva\" AND "
                  "unique_args['attiva_message_id']=\"activity-test.2@attiva\"").json() == {"messages": []}
    refused = search("CONTAINS(subject, \"Activity\")")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "query"
    assert requests.get(f"{sandbox}/sendgrid/v3/messages", params={"query": ""}).status_code == 401
