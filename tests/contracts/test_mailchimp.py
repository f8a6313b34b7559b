"""Mailchimp's own SDK (mailchimp-marketing) against the sandbox: every call Attiva's client makes.

Attiva: batch subscribe/update members of an audience (`POST /lists/{id}`, update_existing), and
add/remove them in a static segment (`POST /lists/{id}/segments/{segment_id}`).
"""

from __future__ import annotations

import hashlib
import json

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from .conftest import TOKENS

LIST, SEGMENT = "a1b2c3d4e5", "1001"


@pytest.fixture
def client(sandbox):
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": TOKENS["mailchimp"], "server": "us1"})
    client.api_client.host = f"{sandbox.root('mailchimp')}/3.0"  # the SDK's fixed https://{dc}.api.mailchimp.com
    return client


def test_members_are_batch_upserted_and_per_row_errors_come_back(sandbox, client):
    members = [{"email_address": "ada@example.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada"}},
               {"email_address": "not-an-email", "status_if_new": "subscribed"}]
    first = client.lists.batch_list_members(LIST, {"members": members, "update_existing": True})
    assert [m["email_address"] for m in first["new_members"]] == ["ada@example.com"]
    assert first["error_count"] == 1 and first["errors"][0]["email_address"] == "not-an-email"
    again = client.lists.batch_list_members(LIST, {"members": members[:1], "update_existing": True})
    assert [m["email_address"] for m in again["updated_members"]] == ["ada@example.com"]
    ada = hashlib.md5(b"ada@example.com").hexdigest()
    assert client.lists.get_list_member(LIST, ada)["merge_fields"]["FNAME"] == "Ada"


def test_members_join_and_leave_a_static_segment(sandbox, client):
    emails = ["ada@example.com", "bob@example.com"]
    client.lists.batch_list_members(LIST, {"members": [{"email_address": e, "status_if_new": "subscribed"}
                                                       for e in emails], "update_existing": True})
    added = client.lists.batch_segment_members({"members_to_add": emails, "members_to_remove": []}, LIST, SEGMENT)
    assert added["total_added"] == 2 and added["error_count"] == 0
    removed = client.lists.batch_segment_members({"members_to_add": [], "members_to_remove": emails[1:]},
                                                 LIST, SEGMENT)
    assert removed["total_removed"] == 1
    segment = sandbox.state("mailchimp")["lists"][LIST]["segments"][SEGMENT]
    assert segment == [hashlib.md5(b"ada@example.com").hexdigest()]


def test_a_batch_over_500_members_is_refused_in_the_sdks_error(sandbox, client):
    members = [{"email_address": f"u{i}@example.com", "status_if_new": "subscribed"} for i in range(501)]
    with pytest.raises(ApiClientError) as err:
        client.lists.batch_list_members(LIST, {"members": members, "update_existing": True})
    assert err.value.status_code == 400
    assert json.loads(err.value.text)["status"] == 400
