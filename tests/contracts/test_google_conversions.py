"""Google's own Data Manager client (google-ads-datamanager, REST transport) against the sandbox's
events:ingest, and Attiva's request read by Google's own message classes.

Attiva: `POST /v1/events:ingest` with `destinations`, `events` (transactionId, eventTimestamp, eventSource,
conversionValue, currency, hashed userData), `consent`, `encoding`, `validateOnly`. Google's client sends
proto3 JSON (enums as integers, timestamps as RFC 3339 with nanoseconds): the sandbox must take them as
Google does; Attiva's body must parse as Google's IngestEventsRequest, field for field.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import google.ads.datamanager_v1 as datamanager
import polars as pl
import pytest
from google.ads.datamanager_v1.services.ingestion_service.transports.rest import (
    IngestionServiceRestTransport,
)
from google.api_core import exceptions as google_errors
from google.oauth2.credentials import Credentials

from activations.destinations.base import KEY_COLUMN
from activations.destinations.config import build_client, parse_destination
from activations.destinations.identifiers import prepare_identifiers

from .conftest import TOKENS

ACTION, ACCOUNT = "6543210987", "1234567890"
OPTIONS = {"type": "google_conversions", "operating_account_id": ACCOUNT, "conversion_action_id": ACTION,
           "ad_user_data_consent": "CONSENT_GRANTED", "ad_personalization_consent": "CONSENT_GRANTED"}


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def client_for(sandbox):
    host = sandbox.root("google_conversions").removeprefix("http://")
    credentials = Credentials(token=TOKENS["google_conversions"])
    transport = IngestionServiceRestTransport(host=host, url_scheme="http", credentials=credentials)
    return datamanager.IngestionServiceClient(transport=transport)


def request(*events) -> datamanager.IngestEventsRequest:
    return datamanager.IngestEventsRequest(
        destinations=[datamanager.Destination(
            operating_account=datamanager.ProductAccount(
                account_type=datamanager.ProductAccount.AccountType.GOOGLE_ADS, account_id=ACCOUNT),
            product_destination_id=ACTION)],
        events=list(events),
        consent=datamanager.Consent(ad_user_data=datamanager.ConsentStatus.CONSENT_GRANTED,
                                    ad_personalization=datamanager.ConsentStatus.CONSENT_GRANTED),
        encoding=datamanager.Encoding.HEX)


def purchase(transaction_id: str, hours_ago: float = 2.0, **changes) -> datamanager.Event:
    fields = {"transaction_id": transaction_id,
              "event_timestamp": datetime.now(UTC) - timedelta(hours=hours_ago, microseconds=123_456),
              "event_source": datamanager.EventSource.WEB, "conversion_value": 42.5, "currency": "EUR",
              "user_data": datamanager.UserData(user_identifiers=[
                  datamanager.UserIdentifier(email_address=sha("ada@example.com"))]), **changes}
    return datamanager.Event(**fields)


def test_the_sdks_events_are_ingested_and_a_transaction_counted_once(sandbox):
    client = client_for(sandbox)
    assert client.ingest_events(request(purchase("O1"), purchase("O2"))).request_id
    assert client.ingest_events(request(purchase("O1"))).request_id
    action = sandbox.state("google_conversions")["conversion_actions"][ACTION]
    assert sorted(action["events"]) == ["O1", "O2"] and action["duplicates"] == 1
    assert action["events"]["O1"]["eventSource"] == "WEB"  # sent by the SDK as the number 1


def test_a_bad_event_is_refused_in_googles_error_shape(sandbox):
    future = purchase("O9", hours_ago=-5)
    with pytest.raises(google_errors.BadRequest) as refused:
        client_for(sandbox).ingest_events(request(purchase("O1"), future))
    assert "events.events[1]" in json.dumps(refused.value.response.json())
    assert sandbox.state("google_conversions")["conversion_actions"] == {}


def test_attivas_request_is_googles_ingest_events_request(sandbox, monkeypatch):
    config = parse_destination("google_conversions", OPTIONS, env={
        "ATTIVA_GOOGLE_CONVERSIONS_URL": sandbox.root("google_conversions"),
        "ATTIVA_GOOGLE_CONVERSIONS_TOKEN": TOKENS["google_conversions"]})
    client = build_client(config)
    sent = []
    request_ = client.http.request
    monkeypatch.setattr(client.http, "request", lambda method, path, **kw: sent.append(kw.get("json_body"))
                        or request_(method, path, **kw))
    frame = pl.DataFrame({KEY_COLUMN: ["O1"], "email": [" Ada@Example.com "], "phone": ["+39 333 1234567"],
                          "event_timestamp": [datetime(2026, 1, 2, 3, 4, 5)], "event_source": ["WEB"],
                          "conversion_value": [42.5], "currency": ["EUR"]})
    batch = prepare_identifiers(frame, client.capabilities).valid
    assert all(r.ok for r in client.send("upsert", batch))
    parsed = datamanager.IngestEventsRequest.from_json(json.dumps(sent[0]))  # unknown fields would raise
    [event] = parsed.events
    assert (event.transaction_id, event.event_source, event.conversion_value, event.currency) == (
        "O1", datamanager.EventSource.WEB, 42.5, "EUR")
    assert event.event_timestamp.isoformat() == "2026-01-02T03:04:05+00:00"
    assert [i.email_address for i in event.user_data.user_identifiers[:1]] == [sha("ada@example.com")]
    assert parsed.destinations[0].product_destination_id == ACTION
    assert parsed.consent.ad_user_data == datamanager.ConsentStatus.CONSENT_GRANTED
    assert parsed.encoding == datamanager.Encoding.HEX
