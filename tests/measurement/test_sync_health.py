"""Sync health: what a destination itself reports about an upload is recorded per run, over real
HTTP to the sandbox: Meta's rows received and invalid, Google's match rate range (Data Manager
`requestStatus:retrieve`); the sync_health view shows it."""

from __future__ import annotations

import duckdb
import pytest
import requests

from activations.destinations.google import _match_range
from activations.engine.run import run_sync
from sandbox.google import _matches, match_rate_range
from tests.engine.conftest import con, sandbox, sandbox_base, warehouse_path  # noqa: F401 - fixtures
from tests.engine.setups import AUDIENCE, FAST_POLICY, TOKENS, add_people, make_sync, sha256

pytestmark = pytest.mark.xdist_group("engine")

STATUS = "/google/v1/requestStatus:retrieve"
INGEST = "/google/v1/audienceMembers:ingest"


def _runs(connection) -> dict:
    return {r[0]: r[1:] for r in connection.execute("""
        select destination, reported_received, reported_invalid, match_rate_low, match_rate_high
        from activation.sync_runs order by started_at""").fetchall()}


def test_meta_reports_what_it_received_and_google_its_match_rate(sandbox, con):  # noqa: F811
    add_people(con, 40)
    for dest_type in ("meta", "google"):
        result = run_sync(con, make_sync(dest_type), sandbox.client(dest_type), policy=FAST_POLICY)
        assert result.status == "success", result
    runs = _runs(con)
    assert runs["t_meta"] == (40, 0, None, None)
    # The sandbox "matches" a person by a hash of their identifiers; Google answers with the range.
    emails = [r[0] for r in con.execute(f"select lower(email) from {AUDIENCE}").fetchall()]
    matched = sum(_matches({"emailAddress": [sha256(e)]}) for e in emails)
    low, high = _match_range(match_rate_range(matched, len(emails)))
    assert runs["t_google"] == (None, None, low, high)
    assert 0 < low < high <= 1

    # A run that sends nothing asks for nothing and reports nothing.
    again = run_sync(con, make_sync("google"), sandbox.client("google"), policy=FAST_POLICY)
    assert (again.sent, again.upload) == (0, None)


def test_meta_counts_the_rows_it_found_invalid(sandbox, con):  # noqa: F811
    add_people(con, 10)
    sandbox.faults("meta", row_reject_rate=1.0)  # Meta finds every row invalid
    result = run_sync(con, make_sync("meta"), sandbox.client("meta"), policy=FAST_POLICY)
    assert result.upload is not None and (result.upload.received, result.upload.invalid) == (10, 10)
    assert _runs(con)["t_meta"][:2] == (10, 10)


def test_the_sandbox_answers_request_status_like_the_data_manager_api(sandbox_base):  # noqa: F811
    auth = {"Authorization": f"Bearer {TOKENS['google']}"}
    body = {"destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1"},
                              "productDestinationId": "42"}],
            "audienceMembers": [{"userData": {"userIdentifiers": [{"emailAddress": sha256(f"p{i}@x.it")}]}}
                                for i in range(20)],
            "encoding": "HEX", "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}}
    request_id = requests.post(sandbox_base + INGEST, json=body, headers=auth, timeout=10).json()["requestId"]
    status = requests.get(sandbox_base + STATUS, params={"requestId": request_id}, headers=auth, timeout=10).json()
    [per_destination] = status["requestStatusPerDestination"]
    assert per_destination["requestStatus"] == "SUCCESS"
    assert per_destination["destination"]["productDestinationId"] == "42"
    ingested = per_destination["audienceMembersIngestionStatus"]["userDataIngestionStatus"]
    assert (ingested["recordCount"], ingested["userIdentifierCount"]) == ("20", "20")
    assert ingested["uploadMatchRateRange"].startswith("MATCH_RATE_RANGE_")
    unknown = requests.get(sandbox_base + STATUS, params={"requestId": "nope"}, headers=auth, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    assert requests.get(sandbox_base + STATUS, headers=auth, timeout=10).status_code == 400
    assert requests.get(sandbox_base + STATUS, params={"requestId": request_id}, timeout=10).status_code == 401


def test_match_rate_ranges_read_as_bounds():
    assert _match_range("MATCH_RATE_RANGE_51_TO_60") == (0.51, 0.6)
    assert _match_range("MATCH_RATE_RANGE_LESS_THAN_20") == (0.0, 0.2)
    assert _match_range("MATCH_RATE_RANGE_NOT_ELIGIBLE") is None and _match_range(None) is None
    assert [match_rate_range(m, 100) for m in (19, 20, 30, 31, 62, 100)] == [
        "MATCH_RATE_RANGE_LESS_THAN_20", "MATCH_RATE_RANGE_20_TO_30", "MATCH_RATE_RANGE_20_TO_30",
        "MATCH_RATE_RANGE_31_TO_40", "MATCH_RATE_RANGE_61_TO_70", "MATCH_RATE_RANGE_91_TO_100"]


@pytest.mark.xdist_group("handcrafted")
def test_sync_health_shows_what_the_destination_reported(measured_warehouse):
    path, _ = measured_warehouse
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = {r[0]: r[1:] for r in connection.execute("""
            select run_id, reported_received, reported_invalid, reported_invalid_rate, match_rate_low, match_rate_high,
                   match_rate
            from measurement.sync_health""").fetchall()}
    assert rows["run-2"] == (6, 1, pytest.approx(1 / 6), None, None, None)  # Meta
    assert rows["run-5"][3:] == (0.61, 0.7, pytest.approx(0.655))  # Google
    assert rows["run-3"] == (None,) * 6  # SendGrid reports neither
