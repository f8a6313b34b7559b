"""SendGrid's SDK erasing contacts in the sandbox: `DELETE /v3/marketing/contacts?ids=...`
(202 with a job id), the call `attiva forget` makes."""

from __future__ import annotations

import json
import time

import sendgrid

from .conftest import TOKENS

LIST = "2f6d5b3a-0c1e-4f7a-9d2b-attiva000001"


def test_contacts_are_deleted_by_id_everywhere(sandbox):
    client = sendgrid.SendGridAPIClient(api_key=TOKENS["sendgrid"], host=sandbox.root("sendgrid")).client
    answer = client.marketing.contacts.put(request_body={"list_ids": [LIST], "contacts": [
        {"email": "ada@example.com"}, {"email": "bob@example.com"}]})
    job_id = json.loads(answer.body)["job_id"]
    for _ in range(200):
        if json.loads(client.marketing.contacts.imports._(job_id).get().body)["status"] != "pending":
            break
        time.sleep(0.02)
    found = json.loads(client.marketing.contacts.search.emails.post(
        request_body={"emails": ["ada@example.com"]}).body)["result"]
    ada = found["ada@example.com"]["contact"]["id"]

    deleted = client.marketing.contacts.delete(query_params={"ids": ada})
    assert deleted.status_code == 202 and "job_id" in json.loads(deleted.body)
    state = sandbox.state("sendgrid")
    assert set(state["contacts"]) == {"bob@example.com"}
    assert ada not in state["lists"][LIST]
