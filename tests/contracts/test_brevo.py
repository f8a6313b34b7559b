"""Brevo's own SDK (brevo-python) against the sandbox: every call Attiva's client makes.

Attiva: import contacts with their attributes into a list (`POST /v3/contacts/import`, 202 with
a process id), then add them to the list by email, and take them out by email.
"""

from __future__ import annotations

import brevo
import pytest
from brevo.contacts import (
    AddContactToListRequestBodyEmails,
    ImportContactsRequestJsonBodyItem,
    RemoveContactFromListRequestBodyEmails,
)
from brevo.core.api_error import ApiError

from .conftest import TOKENS

LIST = 7


@pytest.fixture
def client(sandbox):
    return brevo.Brevo(api_key=TOKENS["brevo"], base_url=f"{sandbox.root('brevo')}/v3")


def test_contacts_are_imported_into_a_list_then_added_and_removed_by_email(sandbox, client):
    imported = client.contacts.import_contacts(
        json_body=[ImportContactsRequestJsonBodyItem(email="ada@example.com", attributes={"FIRSTNAME": "Ada"}),
                   ImportContactsRequestJsonBodyItem(email="bob@example.com")],
        list_ids=[LIST], update_existing_contacts=True)
    assert imported.process_id is not None
    added = client.contacts.add_contact_to_list(
        LIST, request=AddContactToListRequestBodyEmails(emails=["ada@example.com", "bob@example.com"]))
    assert sorted(added.contacts.success) == ["ada@example.com", "bob@example.com"]
    removed = client.contacts.remove_contact_from_list(
        LIST, request=RemoveContactFromListRequestBodyEmails(emails=["bob@example.com"]))
    assert removed.contacts.success == ["bob@example.com"]
    state = sandbox.state("brevo")
    assert state["lists"][str(LIST)] == ["ada@example.com"]
    assert state["contacts"]["ada@example.com"]["attributes"]["FIRSTNAME"] == "Ada"


def test_an_address_that_is_no_contact_is_a_failure_not_a_member(sandbox, client):
    added = client.contacts.add_contact_to_list(
        LIST, request=AddContactToListRequestBodyEmails(emails=["nobody@example.com"]))
    assert added.contacts.failure == ["nobody@example.com"] and not added.contacts.success


def test_a_wrong_key_is_refused_in_brevos_shape(sandbox):
    wrong = brevo.Brevo(api_key="not-the-key", base_url=f"{sandbox.root('brevo')}/v3")
    with pytest.raises(ApiError) as err:
        wrong.contacts.add_contact_to_list(LIST, request=AddContactToListRequestBodyEmails(emails=["a@example.com"]))
    assert err.value.status_code == 401 and err.value.body["code"] == "unauthorized"
