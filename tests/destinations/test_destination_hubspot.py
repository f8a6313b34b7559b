"""HubSpot client against the sandbox: upsert by email, list membership, 207 row errors, rate limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from activations.destinations.base import QuotaExhausted, RetryableError

from .rows import people
from .setups import HUBSPOT_LIST, hubspot_list

LIST = HUBSPOT_LIST


def test_upsert_creates_contacts_and_joins_the_list(sandbox):
    client = sandbox.client("hubspot", list=LIST)
    batch = people(3, firstname=["Ann", "Bo", None])
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, True, True]
    state = sandbox.state("hubspot")
    contacts = state["contacts"]
    assert set(contacts) == set(batch["email"])
    assert contacts["person0@example.com"]["properties"]["firstname"] == "Ann"
    assert "firstname" not in contacts["person2@example.com"]["properties"]  # a null never overwrites
    assert [r.destination_id for r in results] == [contacts[e]["id"] for e in batch["email"]]
    assert sorted(hubspot_list(state)) == sorted(r.destination_id for r in results)


def test_row_errors_map_back_to_their_rows(sandbox):
    client = sandbox.client("hubspot", list=LIST)
    batch = people(4).with_columns(pl.Series("email", ["a@example.com", "not-an-email", "c@example.com", "bad@"]))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[1].status == 207 and "INVALID_EMAIL" in results[1].reason
    assert set(sandbox.state("hubspot")["contacts"]) == {"a@example.com", "c@example.com"}


def test_injected_row_rejections_match_the_state(sandbox):
    sandbox.faults("hubspot", row_reject_rate=0.3, seed=7)
    client = sandbox.client("hubspot")
    batch = people(40)
    results = client.send("upsert", batch)
    stored = set(sandbox.state("hubspot")["contacts"])
    assert 0 < sum(not r.ok for r in results) < 40
    for email, result in zip(batch["email"], results, strict=True):
        assert result.ok == (email in stored), email


def test_duplicate_emails_in_a_batch_are_sent_once(sandbox):
    client = sandbox.client("hubspot")
    batch = people(2).with_columns(pl.Series("email", ["same@example.com", "same@example.com"]))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, True] and results[0].destination_id == results[1].destination_id


def test_remove_takes_record_ids_out_of_the_list(sandbox):
    client = sandbox.client("hubspot", list=LIST)
    batch = people(3)
    ids = [r.destination_id for r in client.send("upsert", batch)]
    removal = batch.head(2).with_columns(pl.Series("_destination_id", ids[:2]))
    removal = pl.concat([removal, batch.tail(1).with_columns(pl.lit(None, pl.String).alias("_destination_id"))])
    results = client.send("remove", removal)
    assert [r.ok for r in results] == [True, True, False]
    assert "record id" in results[2].reason
    assert hubspot_list(sandbox.state("hubspot")) == [ids[2]]


def test_remove_without_a_list_is_a_configuration_error(sandbox):
    from activations.destinations.base import DestinationConfigError

    client = sandbox.client("hubspot")
    assert "mirror" not in client.capabilities.modes
    with pytest.raises(DestinationConfigError, match="list"):
        client.send("remove", people(1).with_columns(pl.lit("1001").alias("_destination_id")))


def test_ten_secondly_limit_is_retryable_for_the_rest_of_the_window(sandbox):
    sandbox.faults("hubspot", rate_limits={"requests": 2, "window_seconds": 10})
    client = sandbox.client("hubspot")
    started = time.monotonic()
    client.send("upsert", people(1))
    client.send("upsert", people(1, start=1))
    with pytest.raises(RetryableError) as err:
        client.send("upsert", people(1, start=2))
    assert err.value.status == 429 and "TEN_SECONDLY_ROLLING" in err.value.reason
    assert 10 - (time.monotonic() - started) - 0.5 <= err.value.retry_after <= 10


def test_daily_limit_stops_the_sync(sandbox):
    sandbox.faults("hubspot", rate_limits={"daily": 1})
    client = sandbox.client("hubspot")
    client.send("upsert", people(1))
    with pytest.raises(QuotaExhausted) as err:
        client.send("upsert", people(1, start=1))
    assert "DAILY" in err.value.reason


def test_server_errors_are_retryable(sandbox):
    sandbox.faults("hubspot", error_rate=1.0)
    with pytest.raises(RetryableError) as err:
        sandbox.client("hubspot").send("upsert", people(2))
    assert err.value.status == 502


def test_concurrent_sends_from_a_thread_pool(sandbox):
    client = sandbox.client("hubspot", list=LIST)
    batches = [people(20, start=i * 20) for i in range(10)]
    with ThreadPoolExecutor(max_workers=client.capabilities.max_concurrency) as pool:
        outcomes = list(pool.map(lambda b: client.send("upsert", b), batches))
    assert all(r.ok for results in outcomes for r in results)
    state = sandbox.state("hubspot")
    assert len(state["contacts"]) == 200 and len(hubspot_list(state)) == 200
    assert len(state["list_defs"]) == 1  # eight threads asked for the list at once: one was made


def test_the_sync_list_is_created_manual_once_then_found_by_name(sandbox):
    first = sandbox.client("hubspot", list="Champions")
    first.send("upsert", people(2))
    again = sandbox.client("hubspot", name="next_run", list="champions")  # a later run; names ignore case
    again.send("upsert", people(1, start=2))
    state = sandbox.state("hubspot")
    (definition,) = state["list_defs"].values()
    assert (definition["name"], definition["processingType"], definition["objectTypeId"]) == ("Champions", "MANUAL", "0-1")
    assert first.list_id() == again.list_id() == definition["listId"]
    assert len(hubspot_list(state, "Champions")) == 3


def test_a_list_hubspot_fills_by_itself_is_refused_by_name(sandbox):
    import requests

    from activations.destinations.base import DestinationConfigError

    client = sandbox.client("hubspot", list="Recent buyers")
    made = requests.post(f"{sandbox.base}/hubspot/crm/v3/lists", timeout=10,
                         json={"name": "Recent buyers", "objectTypeId": "0-1", "processingType": "DYNAMIC"},
                         headers={"Authorization": f"Bearer {client.config.token.reveal()}"})
    assert made.status_code == 200
    with pytest.raises(DestinationConfigError, match="'Recent buyers' is DYNAMIC.*MANUAL"):
        client.send("upsert", people(1))


def test_a_failed_membership_is_retried_alone_without_writing_the_contacts_again(sandbox):
    from activations.engine.deliver import RetryPolicy, deliver
    from activations.engine.pace import TokenBucket

    # Seed 60: the list lookup, its creation and the upsert pass; the membership call gets a 502.
    sandbox.faults("hubspot", error_rate=0.5, seed=60)
    client = sandbox.client("hubspot", list=LIST)
    calls: list[tuple[str, str, int]] = []
    request = client.http.request

    def watched(method, path, **kwargs):
        response = request(method, path, **kwargs)
        calls.append((method, path.rsplit("/", 1)[-1], response.status_code))
        return response

    client.http.request = watched
    delivered = deliver(client, "upsert", people(3), None, TokenBucket(None, None, 1),
                        RetryPolicy(base_delay=0.01, max_delay=0.02))
    assert [r.ok for r in delivered.results] == [True, True, True]
    assert [call for call in calls if call[1] in ("upsert", "add-and-remove")] == [
        ("POST", "upsert", 200), ("PUT", "add-and-remove", 502), ("PUT", "add-and-remove", 200)]
    assert delivered.resent == 3 and delivered.tries == [2, 2, 2]
    assert sorted(hubspot_list(sandbox.state("hubspot"))) == sorted(r.destination_id for r in delivered.results)


def test_a_rate_limit_waits_what_hubspot_says_not_the_rest_of_the_window(sandbox):
    # The portal is busy (another app used the window): HubSpot answers 429 with Retry-After 1;
    # the client used to wait until its own oldest request left the 10 s window.
    sandbox.faults("hubspot", rate_limit_rate=1.0)
    with pytest.raises(RetryableError) as err:
        sandbox.client("hubspot").send("upsert", people(1))
    assert err.value.status == 429 and err.value.retry_after == 1.0
