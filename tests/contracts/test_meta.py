"""Meta's own SDK (facebook-business) against the sandbox: every call Attiva's client makes.

Attiva: add hashed users to a Custom Audience (`POST /{version}/{audience_id}/users`, multi-key
schema, sessions for multi-batch uploads) and remove them (`DELETE` on the same path).
"""

from __future__ import annotations

import hashlib

import pytest
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from .conftest import TOKENS

AUDIENCE, VERSION = "120210000000000001", "v21.0"
SCHEMA = [CustomAudience.Schema.MultiKeySchema.email, CustomAudience.Schema.MultiKeySchema.fn]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def audience(sandbox):
    api = FacebookAdsApi.init(access_token=TOKENS["meta"], api_version=VERSION, crash_log=False)
    api._session.GRAPH = sandbox.root("meta")  # the SDK's fixed https://graph.facebook.com
    return CustomAudience(AUDIENCE, api=api)


def test_users_are_added_then_removed_hashed_with_a_multi_key_schema(sandbox, audience):
    users = [["Ada@Example.com ", "Ada"], ["bob@example.com", "Bob"]]
    added = audience.add_users(SCHEMA, users, is_raw=True,
                               session={"session_id": 7, "batch_seq": 1, "last_batch_flag": True,
                                        "estimated_num_total": 2}).json()
    assert added["audience_id"] == AUDIENCE and added["num_received"] == 2 and added["num_invalid_entries"] == 0
    removed = audience.remove_users(SCHEMA, users[1:], is_raw=True).json()
    assert removed["num_received"] == 1
    members = sandbox.state("meta")["audiences"][AUDIENCE]["members"]
    emails = {m["EMAIL"] for m in (members.values() if isinstance(members, dict) else members)}
    assert emails == {sha("ada@example.com")}  # the SDK trimmed and lower-cased before hashing, as Attiva does


def test_a_wrong_token_is_a_graph_error_the_sdk_reads(sandbox):
    api = FacebookAdsApi.init(access_token="not-the-token", api_version=VERSION, crash_log=False)
    api._session.GRAPH = sandbox.root("meta")
    with pytest.raises(FacebookRequestError) as err:
        CustomAudience(AUDIENCE, api=api).add_users(SCHEMA, [["a@example.com", "A"]], is_raw=True)
    assert err.value.http_status() == 401 and err.value.api_error_code() == 190
