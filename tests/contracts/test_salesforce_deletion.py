"""simple-salesforce erasing records in the sandbox the way `attiva forget` does: the single-record
delete by external id, `DELETE /services/data/vXX.X/sobjects/{SObject}/{ExternalIdField}/{value}`
(sObject Rows by External ID), 204; 404 for a record that is not there."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceResourceNotFound

from .test_salesforce import sf  # noqa: F401 - the fixture


def upsert(sf, *keys: str) -> list[str]:  # noqa: F811
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": key, "LastName": key} for key in keys]}
    return [r["id"] for r in sf.restful("composite/sobjects/Contact/Attiva_Customer_Id__c", method="PATCH", json=body)]


def test_one_record_is_deleted_by_external_id(sandbox, sf):  # noqa: F811
    upsert(sf, "C1", "C2")
    # simple-salesforce puts the id into the path as given: "Field/value" addresses by external id.
    assert sf.Contact.delete("Attiva_Customer_Id__c/C1") == 204
    held = sandbox.state("salesforce")["objects"]["Contact"]["Attiva_Customer_Id__c"]
    assert set(held) == {"C2"}


def test_a_record_that_is_not_there_is_not_found(sandbox, sf):  # noqa: F811
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.delete("Attiva_Customer_Id__c/C404")
