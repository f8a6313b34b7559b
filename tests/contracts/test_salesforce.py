"""Salesforce through simple-salesforce against the sandbox: every call Attiva's client makes.

Attiva: upsert records by an external id field with sObject Collections
(`PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}`, allOrNone false),
reading the per-record answers in input order. simple-salesforce also drives the single-record
upsert the sandbox serves.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
import simple_salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from .conftest import TOKENS

VERSION = "62.0"


class SandboxSession(requests.Session):
    """simple-salesforce only speaks https to an instance's root: carry its requests, unchanged,
    to the sandbox's plain-http /salesforce prefix."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root.rstrip("/")
        self.instance = urlsplit(root).netloc

    def request(self, method, url, *args, **kwargs):
        prefix = f"https://{self.instance}"
        if url.startswith(prefix):
            url = self.root + url[len(prefix):]
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def sf(sandbox):
    root = sandbox.root("salesforce")
    return simple_salesforce.Salesforce(instance_url=f"https://{urlsplit(root).netloc}", session_id=TOKENS["salesforce"],
                                        version=VERSION, session=SandboxSession(root))


def test_records_are_upserted_in_a_collection_by_external_id(sandbox, sf):
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": "C1", "LastName": "Rossi", "Email": "a@example.com"},
        {"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": "C2", "LastName": "Bianchi"},
    ]}
    first = sf.restful("composite/sobjects/Contact/Attiva_Customer_Id__c", method="PATCH", json=body)
    assert [(r["success"], r["created"]) for r in first] == [(True, True), (True, True)]
    again = sf.restful("composite/sobjects/Contact/Attiva_Customer_Id__c", method="PATCH", json=body)
    assert [r["id"] for r in again] == [r["id"] for r in first] and not any(r["created"] for r in again)
    held = sandbox.state("salesforce")["objects"]["Contact"]["Attiva_Customer_Id__c"]
    assert held["C1"]["LastName"] == "Rossi" and held["C2"]["LastName"] == "Bianchi"


def test_a_bad_record_fails_alone_in_input_order(sandbox, sf):
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": "C1", "LastName": "Rossi"},
        {"attributes": {"type": "Contact"}, "LastName": "No external id"},
    ]}
    answer = sf.restful("composite/sobjects/Contact/Attiva_Customer_Id__c", method="PATCH", json=body)
    assert answer[0]["success"] is True
    assert answer[1]["success"] is False and answer[1]["errors"][0]["statusCode"]


def test_more_than_200_records_is_refused_in_salesforces_error_shape(sandbox, sf):
    records = [{"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": f"C{i}", "LastName": "X"}
               for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects/Contact/Attiva_Customer_Id__c", method="PATCH",
                   json={"allOrNone": False, "records": records})
    assert err.value.status == 400 and err.value.content[0]["errorCode"]


def test_one_record_is_upserted_by_external_id_through_the_sobject_api(sandbox, sf):
    created = sf.Contact.upsert("Attiva_Customer_Id__c/C9", {"LastName": "Verdi"})
    assert created == 201
    assert sf.Contact.upsert("Attiva_Customer_Id__c/C9", {"LastName": "Neri"}) == 200  # 204 before API v46
    held = sandbox.state("salesforce")["objects"]["Contact"]["Attiva_Customer_Id__c"]
    assert held["C9"]["LastName"] == "Neri"
