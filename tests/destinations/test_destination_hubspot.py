"""HubSpot client against the sandbox: upsert by email, list membership, 207 row errors, rate limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from activations.destinations.base import QuotaExhausted, RetryableError

from .rows import people

LIST = "5001"


def test_upsert_creates_contacts_and_joins_the_list(sandbox):
    client = sandbox.client("hubspot", list_id=LIST)
    batch = people(3, firstname=["Ann", "Bo", None])
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, True, True]
    state = sandbox.state("hubspot")
    contacts = state["contacts"]
    assert set(contacts) == set(batch["email"])
    assert contacts["person0@example.com"]["properties"]["firstname"] == "Ann"
    assert "firstname" not in contacts["person2@example.com"]["properties"]  # a null never overwrites
    assert [r.destination_id for r in results] == [contacts[e]["id"] for e in batch["email"]]
    assert sorted(state["lists"][LIST]) == sorted(r.destination_id for r in results)


def test_row_errors_map_back_to_their_rows(sandbox):
    client = sandbox.client("hubspot", list_id=LIST)
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
    client = sandbox.client("hubspot", list_id=LIST)
    batch = people(3)
    ids = [r.destination_id for r in client.send("upsert", batch)]
    removal = batch.head(2).with_columns(pl.Series("_destination_id", ids[:2]))
    removal = pl.concat([removal, batch.tail(1).with_columns(pl.lit(None, pl.String).alias("_destination_id"))])
    results = client.send("remove", removal)
    assert [r.ok for r in results] == [True, True, False]
    assert "record id" in results[2].reason
    assert sandbox.state("hubspot")["lists"][LIST] == [ids[2]]


def test_remove_without_a_list_is_a_configuration_error(sandbox):
    from activations.destinations.base import DestinationConfigError

    client = sandbox.client("hubspot")
    assert "mirror" not in client.capabilities.modes
    with pytest.raises(DestinationConfigError, match="list_id"):
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
    client = sandbox.client("hubspot", list_id=LIST)
    batches = [people(20, start=i * 20) for i in range(10)]
    with ThreadPoolExecutor(max_workers=client.capabilities.max_concurrency) as pool:
        outcomes = list(pool.map(lambda b: client.send("upsert", b), batches))
    assert all(r.ok for results in outcomes for r in results)
    state = sandbox.state("hubspot")
    assert len(state["contacts"]) == 200 and len(state["lists"][LIST]) == 200
