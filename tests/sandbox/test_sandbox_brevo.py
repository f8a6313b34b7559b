"""Brevo: contacts, list add/remove of existing contacts, api-key header and x-sib-ratelimit."""

from __future__ import annotations

import requests
from sandbox_helpers import auth, state

LIST = "/brevo/v3/contacts/lists/12/contacts"


def test_contacts_then_list_membership(sandbox: str) -> None:
    created = requests.post(
        f"{sandbox}/brevo/v3/contacts",
        json={"email": "ada@example.com", "attributes": {"FIRSTNAME": "Ada"}},
        **auth("brevo"),
    )
    assert created.status_code == 201 and created.json() == {"id": 1}
    duplicate = requests.post(f"{sandbox}/brevo/v3/contacts", json={"email": "ada@example.com"}, **auth("brevo"))
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "duplicate_parameter"
    updated = requests.post(
        f"{sandbox}/brevo/v3/contacts", json={"email": "ada@example.com", "updateEnabled": True}, **auth("brevo")
    )
    assert updated.status_code == 204
    imported = requests.post(
        f"{sandbox}/brevo/v3/contacts/import",
        json={"jsonBody": [{"email": "bob@example.com"}, {"email": "cy@example.com"}]},
        **auth("brevo"),
    )
    assert imported.status_code == 202 and "processId" in imported.json()

    added = requests.post(
        f"{sandbox}{LIST}/add",
        json={"emails": ["ada@example.com", "bob@example.com", "nobody@example.com"]},
        **auth("brevo"),
    )
    assert added.status_code == 201
    assert added.json() == {
        "contacts": {"success": ["ada@example.com", "bob@example.com"], "failure": ["nobody@example.com"]}
    }
    assert added.headers["x-sib-ratelimit-limit"] == "10"
    assert int(added.headers["x-sib-ratelimit-remaining"]) < 10

    removed = requests.post(
        f"{sandbox}{LIST}/remove", json={"emails": ["bob@example.com", "cy@example.com"]}, **auth("brevo")
    )
    assert removed.json() == {"contacts": {"success": ["bob@example.com"], "failure": ["cy@example.com"]}}
    held = state(sandbox, "brevo")
    assert held["lists"] == {"12": ["ada@example.com"]}
    assert held["contacts"]["ada@example.com"]["listIds"] == [12]
    assert held["contacts"]["ada@example.com"]["attributes"] == {"FIRSTNAME": "Ada"}


def test_auth_is_refused_unauthorized(sandbox: str) -> None:
    for kwargs in ({}, auth("brevo", "xkeysib-wrong")):
        answer = requests.post(f"{sandbox}{LIST}/add", json={"emails": ["a@example.com"]}, **kwargs)
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"


def test_more_than_150_emails_is_refused(sandbox: str) -> None:
    answer = requests.post(
        f"{sandbox}{LIST}/add", json={"emails": [f"u{i}@example.com" for i in range(151)]}, **auth("brevo")
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_parameter"


def test_invalid_addresses_are_failures(sandbox: str) -> None:
    answer = requests.post(f"{sandbox}{LIST}/add", json={"emails": ["not-an-email"]}, **auth("brevo"))
    assert answer.json() == {"contacts": {"success": [], "failure": ["not-an-email"]}}


def test_rate_limit_is_429_with_sib_headers(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"brevo": {"requests": 2, "window_seconds": 5}})
    answers = [requests.post(f"{url}{LIST}/add", json={"emails": ["a@example.com"]}, **auth("brevo")) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    limited = answers[-1]
    assert limited.headers["x-sib-ratelimit-remaining"] == "0"
    assert 1 <= int(limited.headers["x-sib-ratelimit-reset"]) <= 5
