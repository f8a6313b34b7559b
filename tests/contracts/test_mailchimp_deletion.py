"""Mailchimp's SDK erasing a member in the sandbox: permanent delete
(`POST /lists/{id}/members/{subscriber_hash}/actions/delete-permanent`, 204), the call
`attiva forget` makes."""

from __future__ import annotations

import hashlib

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from .conftest import TOKENS

LIST, SEGMENT = "a1b2c3d4e5", "1001"


def test_a_member_is_deleted_permanently_from_the_audience_and_its_segments(sandbox):
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": TOKENS["mailchimp"], "server": "us1"})
    client.api_client.host = f"{sandbox.root('mailchimp')}/3.0"
    client.lists.batch_list_members(LIST, {"members": [{"email_address": "ada@example.com",
                                                        "status_if_new": "subscribed"}], "update_existing": True})
    client.lists.batch_segment_members({"members_to_add": ["ada@example.com"], "members_to_remove": []}, LIST, SEGMENT)
    ada = hashlib.md5(b"ada@example.com").hexdigest()

    client.lists.delete_list_member_permanent(LIST, ada)
    with pytest.raises(ApiClientError) as err:
        client.lists.get_list_member(LIST, ada)
    assert err.value.status_code == 404
    held = sandbox.state("mailchimp")["lists"][LIST]
    assert ada not in held["members"] and ada not in held["segments"].get(SEGMENT, [])
