"""Brevo's SDK erasing a contact in the sandbox: `DELETE /v3/contacts/{email}` (204), the call
`attiva forget` makes."""

from __future__ import annotations

import brevo
import pytest
from brevo.contacts import ImportContactsRequestJsonBodyItem
from brevo.core.api_error import ApiError

from .conftest import TOKENS

LIST = 7


def test_a_contact_is_deleted_by_email_and_leaves_its_lists(sandbox):
    client = brevo.Brevo(api_key=TOKENS["brevo"], base_url=f"{sandbox.root('brevo')}/v3")
    client.contacts.import_contacts(json_body=[ImportContactsRequestJsonBodyItem(email="ada@example.com"),
                                               ImportContactsRequestJsonBodyItem(email="bob@example.com")],
                                    list_ids=[LIST], update_existing_contacts=True)
    client.contacts.delete_contact("ada@example.com")
    state = sandbox.state("brevo")
    assert set(state["contacts"]) == {"bob@example.com"}
    assert state["lists"][str(LIST)] == ["bob@example.com"]
    with pytest.raises(ApiError) as err:
        client.contacts.delete_contact("ada@example.com")
    assert err.value.status_code == 404
