"""HubSpot's own SDK (hubspot-api-client) against the sandbox: every call Attiva's client makes.

Attiva: find the sync's list by name, else create it MANUAL; batch-upsert contacts by email;
add and remove list members by record id; read the 429 a busy portal answers.
"""

from __future__ import annotations

import hubspot
import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsError
from hubspot.crm.lists import ListCreateRequest, MembershipChangeRequest
from hubspot.crm.lists.exceptions import ApiException as ListsError

from .conftest import TOKENS


@pytest.fixture
def client(sandbox):
    return hubspot.HubSpot(access_token=TOKENS["hubspot"], host=sandbox.root("hubspot"))


def upsert(client, *emails: str):
    inputs = [SimplePublicObjectBatchInputUpsert(id=email, id_property="email", properties={"firstname": "Ann"})
              for email in emails]
    return client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))


def test_the_list_is_found_by_name_or_created_manual(sandbox, client):
    lists = client.crm.lists.lists_api
    with pytest.raises(ListsError) as missing:
        lists.get_by_name("Attiva champions", "0-1")
    assert missing.value.status == 404
    made = lists.create(ListCreateRequest(name="Attiva champions", object_type_id="0-1", processing_type="MANUAL"))
    assert made.list.processing_type == "MANUAL" and made.list.list_id.isdigit()
    found = lists.get_by_name("attiva CHAMPIONS", "0-1")
    assert found.list.list_id == made.list.list_id and found.list.name == "Attiva champions"


def test_contacts_are_upserted_by_email_and_join_and_leave_the_list(sandbox, client):
    made = client.crm.lists.lists_api.create(
        ListCreateRequest(name="Champions", object_type_id="0-1", processing_type="MANUAL")).list
    first = upsert(client, "ada@example.com", "bob@example.com")
    assert first.status == "COMPLETE"
    ids = {r.properties["email"]: r.id for r in first.results}
    assert set(ids) == {"ada@example.com", "bob@example.com"}
    assert upsert(client, "ADA@example.com").results[0].id == ids["ada@example.com"]

    memberships = client.crm.lists.memberships_api
    added = memberships.add_and_remove(made.list_id, MembershipChangeRequest(
        record_ids_to_add=[*ids.values(), "999999"], record_ids_to_remove=[]))
    assert sorted(added.records_ids_added) == sorted(ids.values()) and added.record_ids_missing == ["999999"]
    removed = memberships.add_and_remove(made.list_id, MembershipChangeRequest(
        record_ids_to_add=[], record_ids_to_remove=[ids["bob@example.com"]]))
    assert removed.record_ids_removed == [ids["bob@example.com"]]
    assert sandbox.state("hubspot")["lists"][made.list_id] == [ids["ada@example.com"]]


def test_a_row_error_comes_back_as_a_207_the_sdk_reads(sandbox, client):
    answer = upsert(client, "ok@example.com", "not-an-email")
    assert answer.num_errors == 1 and answer.errors[0].context == {"ids": ["not-an-email"]}
    assert [r.properties["email"] for r in answer.results] == ["ok@example.com"]


def test_a_list_id_that_does_not_exist_is_not_found(sandbox, client):
    # What destinations.yml's old `list_id: "attiva-audiences"` met at a real portal.
    with pytest.raises(ListsError) as err:
        client.crm.lists.memberships_api.add_and_remove(
            "attiva-audiences", MembershipChangeRequest(record_ids_to_add=["1001"], record_ids_to_remove=[]))
    assert err.value.status == 404


def test_a_busy_portal_answers_429_with_its_policy_and_retry_after(sandbox, client):
    import requests

    requests.post(f"{sandbox.base}/_sandbox/faults", json={"destination": "hubspot", "rate_limit_rate": 1.0},
                  timeout=10).raise_for_status()
    with pytest.raises(ContactsError) as err:
        upsert(client, "a@example.com")
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "1"
    assert '"policyName":"TEN_SECONDLY_ROLLING"' in err.value.body.replace(" ", "")
