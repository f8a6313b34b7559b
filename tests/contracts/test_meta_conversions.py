"""Meta's own SDK (facebook-business, its Conversions API classes) against the sandbox's events edge.

Attiva: `POST /{version}/{pixel_id}/events` with `data` (server events, user_data hashed); the SDK posts
the same edge form-encoded, normalizing and hashing with Meta's own rules, which Attiva's must match.
"""

from __future__ import annotations

import time

import polars as pl
import pytest
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from activations.destinations.config import destination_class, parse_destination
from activations.destinations.identifiers import prepare_identifiers

from .conftest import TOKENS

PIXEL, VERSION = "120210000000000777", "v21.0"
RAW = {"email": " Person@Example.com", "phone": "+1 (616) 954-78 88", "first_name": "Valéry", "city": "New York",
       "zip": "94035-1234", "country": "US"}


def connect(sandbox, token: str) -> None:
    api = FacebookAdsApi.init(access_token=token, api_version=VERSION, crash_log=False)
    api._session.GRAPH = sandbox.root("meta_conversions")  # the SDK's fixed https://graph.facebook.com


def purchase(event_id: str, seconds_ago: int = 3600) -> Event:
    user = UserData(email=RAW["email"], phone=RAW["phone"], first_name=RAW["first_name"], city=RAW["city"],
                    zip_code=RAW["zip"], country_code=RAW["country"], external_id="C00042")
    return Event(event_name="Purchase", event_time=int(time.time()) - seconds_ago, event_id=event_id,
                 action_source=ActionSource.WEBSITE, user_data=user,
                 custom_data=CustomData(value=42.5, currency="eur"))


def test_the_sdks_events_are_received_and_hashed_as_attiva_hashes_them(sandbox):
    connect(sandbox, TOKENS["meta_conversions"])
    response = EventRequest(pixel_id=PIXEL, events=[purchase("O1"), purchase("O2")]).execute()
    assert response.events_received == 2
    events = sandbox.state("meta_conversions")["pixels"][PIXEL]["events"]
    sdk = events["Purchase:O1"]["user_data"]
    # The same raw values through Attiva's normalization for this type.
    config = parse_destination("meta_conversions", {"type": "meta_conversions", "pixel_id": PIXEL}, env={})
    capabilities = destination_class("meta_conversions").platform_capabilities(config)
    ours = prepare_identifiers(pl.DataFrame({"_key": ["O1"], **{k: [v] for k, v in RAW.items()}}), capabilities).valid
    for kind, key in (("email", "em"), ("phone", "ph"), ("first_name", "fn"), ("city", "ct"), ("zip", "zp"),
                      ("country", "country")):
        assert sdk[key] == [ours[kind][0]], kind
    assert sdk["external_id"] == ["C00042"]  # the SDK leaves it in clear; Attiva hashes it (Meta: recommended)


def test_one_stale_event_refuses_the_request_in_a_graph_error_the_sdk_reads(sandbox):
    connect(sandbox, TOKENS["meta_conversions"])
    with pytest.raises(FacebookRequestError) as err:
        EventRequest(pixel_id=PIXEL, events=[purchase("O1"), purchase("O2", seconds_ago=8 * 24 * 3600)]).execute()
    assert (err.value.http_status(), err.value.api_error_code(), err.value.api_error_subcode()) == (400, 100, 2804003)
    assert err.value.body()["error"]["error_data"] == {"event_index": 1}
    assert sandbox.state("meta_conversions")["pixels"] == {}  # none of the request was kept


def test_a_wrong_token_is_a_graph_error_the_sdk_reads(sandbox):
    connect(sandbox, "not-the-token")
    with pytest.raises(FacebookRequestError) as err:
        EventRequest(pixel_id=PIXEL, events=[purchase("O1")]).execute()
    assert err.value.http_status() == 401 and err.value.api_error_code() == 190
