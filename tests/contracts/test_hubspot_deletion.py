"""HubSpot's SDK erasing a contact in the sandbox: GDPR delete by email
(`POST /crm/v3/objects/contacts/gdpr-delete`, 204), the call `attiva forget` makes."""

from __future__ import annotations

import hubspot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicGdprDeleteInput,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.lists import ListCreateRequest, MembershipChangeRequest

from .conftest import TOKENS


def test_a_contact_is_gdpr_deleted_by_email_and_leaves_its_lists(sandbox):
    client = hubspot.HubSpot(access_token=TOKENS["hubspot"], host=sandbox.root("hubspot"))
    made = client.crm.lists.lists_api.create(
        ListCreateRequest(name="Champions", object_type_id="0-1", processing_type="MANUAL")).list
    inputs = [SimplePublicObjectBatchInputUpsert(id=e, id_property="email", properties={})
              for e in ("ada@example.com", "bob@example.com")]
    ids = [r.id for r in client.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)).results]
    client.crm.lists.memberships_api.add_and_remove(
        made.list_id, MembershipChangeRequest(record_ids_to_add=ids, record_ids_to_remove=[]))

    assert client.crm.contacts.basic_api.purge(
        PublicGdprDeleteInput(object_id="ADA@example.com", id_property="email")) is None  # 204, no body
    state = sandbox.state("hubspot")
    assert set(state["contacts"]) == {"bob@example.com"}
    assert all(record_id in ids[1:] for record_id in state["lists"][made.list_id])
