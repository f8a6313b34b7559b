"""Google's own Data Manager client (google-ads-datamanager, REST transport) against the sandbox:
every call Attiva's client makes.

Attiva: ingest and remove hashed audience members of a Customer Match user list
(`POST /v1/audienceMembers:ingest` / `:remove`), then read the request's status
(`GET /v1/requestStatus:retrieve`). Google's client sends proto3 JSON, which writes enums as
integers (`"accountType": 1`): the sandbox must take them as Google does.
"""

from __future__ import annotations

import hashlib

import google.ads.datamanager_v1 as datamanager
import pytest
from google.ads.datamanager_v1.services.ingestion_service.transports.rest import (
    IngestionServiceRestTransport,
)
from google.api_core import exceptions as google_errors
from google.oauth2.credentials import Credentials

from .conftest import TOKENS

USER_LIST, ACCOUNT = "9876543210", "1234567890"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def client_for(sandbox, token: str = TOKENS["google"]):
    host = sandbox.root("google").removeprefix("http://")
    transport = IngestionServiceRestTransport(host=host, url_scheme="http", credentials=Credentials(token=token))
    return datamanager.IngestionServiceClient(transport=transport)


def destination():
    return datamanager.Destination(
        operating_account=datamanager.ProductAccount(
            account_type=datamanager.ProductAccount.AccountType.GOOGLE_ADS, account_id=ACCOUNT),
        product_destination_id=USER_LIST)


def members(*emails: str):
    return [datamanager.AudienceMember(user_data=datamanager.UserData(
        user_identifiers=[datamanager.UserIdentifier(email_address=sha(e))])) for e in emails]


CONSENT = datamanager.Consent(ad_user_data=datamanager.ConsentStatus.CONSENT_GRANTED,
                              ad_personalization=datamanager.ConsentStatus.CONSENT_GRANTED)


def test_members_are_ingested_then_removed_and_the_request_status_is_read(sandbox):
    client = client_for(sandbox)
    ingested = client.ingest_audience_members(datamanager.IngestAudienceMembersRequest(
        destinations=[destination()], audience_members=members("ada@example.com", "bob@example.com"),
        consent=CONSENT, encoding=datamanager.Encoding.HEX))
    assert ingested.request_id
    status = client.retrieve_request_status(datamanager.RetrieveRequestStatusRequest(request_id=ingested.request_id))
    assert len(status.request_status_per_destination) == 1
    removed = client.remove_audience_members(datamanager.RemoveAudienceMembersRequest(
        destinations=[destination()], audience_members=members("bob@example.com"),
        encoding=datamanager.Encoding.HEX))
    assert removed.request_id
    held = sandbox.state("google")["user_lists"][USER_LIST]["members"]
    emails = [e for member in (held.values() if isinstance(held, dict) else held) for e in member["emailAddress"]]
    assert emails == [sha("ada@example.com")]


def test_a_member_without_identifiers_is_refused_in_googles_error_shape(sandbox):
    empty = datamanager.AudienceMember(user_data=datamanager.UserData(user_identifiers=[]))
    with pytest.raises(google_errors.BadRequest):
        client_for(sandbox).ingest_audience_members(datamanager.IngestAudienceMembersRequest(
            destinations=[destination()], audience_members=[empty], consent=CONSENT,
            encoding=datamanager.Encoding.HEX))


def test_a_wrong_token_is_unauthenticated(sandbox):
    from google.auth.exceptions import RefreshError

    # Google's session answers a 401 by refreshing the token, which a bare token cannot: that is the 401.
    with pytest.raises(RefreshError):
        client_for(sandbox, "not-the-token").ingest_audience_members(datamanager.IngestAudienceMembersRequest(
            destinations=[destination()], audience_members=members("a@example.com"), consent=CONSENT,
            encoding=datamanager.Encoding.HEX))
