"""SendGrid's own SDK (sendgrid, over python-http-client) against the sandbox: every call Attiva's
client makes.

Attiva: upsert contacts into a list (`PUT /v3/marketing/contacts`, 202 with a job id), poll the
import job, look contacts up by email, and take them out of the list by contact id.
"""

from __future__ import annotations

import json
import time

import pytest
import sendgrid
from python_http_client.exceptions import HTTPError

from .conftest import TOKENS

LIST = "2f6d5b3a-0c1e-4f7a-9d2b-attiva000001"


@pytest.fixture
def client(sandbox):
    return sendgrid.SendGridAPIClient(api_key=TOKENS["sendgrid"], host=sandbox.root("sendgrid")).client


def finished(client, job_id: str) -> dict:
    for _ in range(200):
        job = json.loads(client.marketing.contacts.imports._(job_id).get().body)
        if job["status"] != "pending":
            return job
        time.sleep(0.02)
    raise AssertionError(f"import {job_id} still pending")


def test_contacts_are_imported_into_the_list_then_found_and_removed(sandbox, client):
    contacts = [{"email": "ada@example.com", "first_name": "Ada", "custom_fields": {"tier": "gold"}},
                {"email": "bob@example.com"}]
    answer = client.marketing.contacts.put(request_body={"list_ids": [LIST], "contacts": contacts})
    assert answer.status_code == 202
    job = finished(client, json.loads(answer.body)["job_id"])
    assert job["status"] == "completed" and job["results"]["created_count"] == 2

    found = client.marketing.contacts.search.emails.post(request_body={"emails": ["ada@example.com", "bob@example.com"]})
    ids = {email: entry["contact"]["id"] for email, entry in json.loads(found.body)["result"].items()}
    assert set(ids) == {"ada@example.com", "bob@example.com"}

    removed = client.marketing.lists._(LIST).contacts.delete(query_params={"contact_ids": ids["bob@example.com"]})
    assert removed.status_code == 202 and "job_id" in json.loads(removed.body)
    assert sandbox.state("sendgrid")["lists"][LIST] == [ids["ada@example.com"]]


def test_an_unknown_email_search_is_a_404_the_sdk_raises(sandbox, client):
    with pytest.raises(HTTPError) as err:
        client.marketing.contacts.search.emails.post(request_body={"emails": ["nobody@example.com"]})
    assert err.value.status_code == 404
    assert json.loads(err.value.body)["errors"]


def test_a_bad_contact_is_reported_by_the_import_job_in_its_errors_csv(sandbox, client):
    import requests

    answer = client.marketing.contacts.put(request_body={"list_ids": [LIST], "contacts": [
        {"email": "ok@example.com"}, {"email": "not-an-email"}]})
    assert answer.status_code == 202
    job = finished(client, json.loads(answer.body)["job_id"])
    assert job["results"]["errored_count"] == 1 and job["results"]["created_count"] == 1
    rows = requests.get(job["results"]["errors_url"], timeout=10).text.splitlines()
    assert "not-an-email" in rows[1] and rows[0].lower().startswith("index")
