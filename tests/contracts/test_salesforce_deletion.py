"""simple-salesforce erasing records in the sandbox: sObject Collections delete
(`DELETE /services/data/vXX.X/composite/sobjects?ids=...&allOrNone=false`) and the single-record
`DELETE /sobjects/{SObject}/{id}`; `attiva forget` uses one of them."""

from __future__ import annotations

from .test_salesforce import sf  # noqa: F401 - the fixture


def upsert(sf, *keys: str) -> list[str]:  # noqa: F811
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": key, "LastName": key} for key in keys]}
    return [r["id"] for r in sf.restful("composite/sobjects/Contact/Attiva_Customer_Id__c", method="PATCH", json=body)]


def test_records_are_deleted_in_a_collection_by_id(sandbox, sf):  # noqa: F811
    ids = upsert(sf, "C1", "C2", "C3")
    answer = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids[:2]), "allOrNone": "false"})
    assert [(r["id"], r["success"]) for r in answer] == [(ids[0], True), (ids[1], True)]
    held = sandbox.state("salesforce")["objects"]["Contact"]["Attiva_Customer_Id__c"]
    assert set(held) == {"C3"}


def test_one_record_is_deleted_by_id(sandbox, sf):  # noqa: F811
    [record_id] = upsert(sf, "C9")
    assert sf.Contact.delete(record_id) == 204
    assert "C9" not in sandbox.state("salesforce")["objects"]["Contact"]["Attiva_Customer_Id__c"]
