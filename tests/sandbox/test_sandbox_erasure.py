"""The vendors' own deletion endpoints, as the sandbox serves them: what they delete, and what they refuse
(see docs/erasure.md for the vendor documentation each follows)."""

from __future__ import annotations

import hashlib

import requests
from sandbox_helpers import auth, state

ADA = "ada@example.com"


def md5(email: str) -> str:
    return hashlib.md5(email.encode()).hexdigest()


def test_hubspot_gdpr_delete_removes_the_contact_from_every_list(sandbox: str) -> None:
    upsert = requests.post(f"{sandbox}/hubspot/crm/v3/objects/contacts/batch/upsert", **auth("hubspot"), json={
        "inputs": [{"id": ADA, "idProperty": "email", "properties": {"firstname": "Ada"}}]})
    record_id = upsert.json()["results"][0]["id"]
    made = requests.post(f"{sandbox}/hubspot/crm/v3/lists", **auth("hubspot"),
                         json={"name": "Attiva champions", "objectTypeId": "0-1", "processingType": "MANUAL"})
    list_id = made.json()["list"]["listId"]
    requests.put(f"{sandbox}/hubspot/crm/v3/lists/{list_id}/memberships/add-and-remove", **auth("hubspot"),
                 json={"recordIdsToAdd": [record_id]}).raise_for_status()
    path = f"{sandbox}/hubspot/crm/v3/objects/contacts/gdpr-delete"
    deleted = requests.post(path, json={"objectId": ADA.upper(), "idProperty": "email"}, **auth("hubspot"))
    assert deleted.status_code == 204 and deleted.content == b""
    held = state(sandbox, "hubspot")
    assert held["contacts"] == {} and held["lists"] == {list_id: []}
    assert held["gdpr_blocklist"] == [hashlib.sha256(ADA.encode()).hexdigest()]
    # An address nobody had is blocklisted all the same; an unknown record id is a 404.
    assert requests.post(path, json={"objectId": "bo@example.com", "idProperty": "email"},
                         **auth("hubspot")).status_code == 204
    missing = requests.post(path, json={"objectId": record_id}, **auth("hubspot"))
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    assert requests.post(path, json={"idProperty": "email"}, **auth("hubspot")).status_code == 400
    assert requests.post(path, json={"objectId": ADA, "idProperty": "phone"}, **auth("hubspot")).status_code == 400


def test_mailchimp_delete_permanent_refuses_to_reimport_the_address(sandbox: str) -> None:
    members = f"{sandbox}/mailchimp/3.0/lists/L1"
    requests.post(members, json={"members": [{"email_address": ADA, "status": "subscribed"}]},
                  **auth("mailchimp")).raise_for_status()
    requests.post(f"{members}/segments/5", json={"members_to_add": [ADA]}, **auth("mailchimp")).raise_for_status()
    delete = f"{members}/members/{md5(ADA)}/actions/delete-permanent"
    assert requests.post(delete, **auth("mailchimp")).status_code == 204
    held = state(sandbox, "mailchimp")
    assert held["lists"]["L1"] == {"members": {}, "segments": {"5": []}}
    assert requests.post(delete, **auth("mailchimp")).status_code == 404
    # Gone for good: neither a batch nor a PUT brings the address back.
    again = requests.post(members, json={"members": [{"email_address": ADA, "status": "subscribed"}],
                                         "update_existing": True}, **auth("mailchimp")).json()
    assert again["new_members"] == [] and "permanently deleted" in again["errors"][0]["error"]
    put = requests.put(f"{members}/members/{md5(ADA)}", json={"email_address": ADA, "status_if_new": "subscribed"},
                       **auth("mailchimp"))
    assert put.status_code == 400 and put.json()["title"] == "Forgotten Email Not Subscribed"


def test_sendgrid_delete_contacts_by_id_and_refuses_an_ambiguous_request(start_sandbox) -> None:
    sandbox = start_sandbox(sendgrid_import_seconds=0)
    requests.put(f"{sandbox}/sendgrid/v3/marketing/contacts", json={"list_ids": ["l1"], "contacts": [{"email": ADA}]},
                 **auth("sendgrid")).raise_for_status()
    found = requests.post(f"{sandbox}/sendgrid/v3/marketing/contacts/search/emails", json={"emails": [ADA]},
                          **auth("sendgrid")).json()
    contact_id = found["result"][ADA]["contact"]["id"]
    path = f"{sandbox}/sendgrid/v3/marketing/contacts"
    assert requests.delete(path, **auth("sendgrid")).status_code == 400
    assert requests.delete(path, params={"ids": contact_id, "delete_all_contacts": "true"},
                           **auth("sendgrid")).status_code == 400
    deleted = requests.delete(path, params={"ids": contact_id}, **auth("sendgrid"))
    assert deleted.status_code == 202 and deleted.json()["job_id"]
    held = state(sandbox, "sendgrid")
    assert held["contacts"] == {} and held["lists"] == {"l1": []}
    assert requests.post(f"{sandbox}/sendgrid/v3/marketing/contacts/search/emails", json={"emails": [ADA]},
                         **auth("sendgrid")).status_code == 404


def test_brevo_delete_contact_by_email_or_id(sandbox: str) -> None:
    for email in (ADA, "bo@example.com"):
        requests.post(f"{sandbox}/brevo/v3/contacts", json={"email": email, "listIds": [3]},
                      **auth("brevo")).raise_for_status()
    by_email = requests.delete(f"{sandbox}/brevo/v3/contacts/ada%40example.com", params={"identifierType": "email_id"},
                               **auth("brevo"))
    assert by_email.status_code == 204
    assert requests.delete(f"{sandbox}/brevo/v3/contacts/2", params={"identifierType": "contact_id"},
                           **auth("brevo")).status_code == 204
    held = state(sandbox, "brevo")
    assert held["contacts"] == {} and held["lists"] == {"3": []}
    missing = requests.delete(f"{sandbox}/brevo/v3/contacts/ada%40example.com", **auth("brevo"))
    assert missing.status_code == 404 and missing.json()["code"] == "document_not_found"


def test_salesforce_delete_by_external_id(sandbox: str) -> None:
    base = f"{sandbox}/salesforce/services/data/v62.0"
    requests.patch(f"{base}/composite/sobjects/Contact/Ext__c", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Ext__c": "cus_1", "LastName": "Lovelace"}]},
        **auth("salesforce")).raise_for_status()
    assert requests.delete(f"{base}/sobjects/Contact/Ext__c/cus_1", **auth("salesforce")).status_code == 204
    assert state(sandbox, "salesforce")["objects"]["Contact"]["Ext__c"] == {}
    missing = requests.delete(f"{base}/sobjects/Contact/Ext__c/cus_1", **auth("salesforce"))
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
