"""Salesforce against the sandbox: sObject Collections upsert on an external id."""

from __future__ import annotations

import polars as pl
import pytest

from activations.destinations.base import DestinationConfigError, QuotaExhausted

from .rows import people
from .setups import OPTIONS, batch_for


def records(sandbox) -> dict:
    return sandbox.state("salesforce")["objects"].get("Contact", {}).get("Attiva_Id__c", {})


def test_upsert_on_external_id(sandbox):
    client = sandbox.client("salesforce", **OPTIONS["salesforce"])
    batch = batch_for(client, 3)
    first = client.send("upsert", batch)
    assert all(r.ok for r in first) and all(r.destination_id.startswith("003") for r in first)
    again = client.send("upsert", batch.with_columns(pl.lit("Changed").alias("LastName")))
    assert [r.destination_id for r in again] == [r.destination_id for r in first]  # same records, updated
    stored = records(sandbox)
    assert set(stored) == {"C00000", "C00001", "C00002"}
    assert {r["LastName"] for r in stored.values()} == {"Changed"}


def test_per_row_errors_in_input_order(sandbox):
    client = sandbox.client("salesforce", **OPTIONS["salesforce"])
    batch = people(4, Email=["ok@example.com", "broken", "ok2@example.com", "also broken"]).drop("email", "phone")
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True, False]
    assert "INVALID_EMAIL_ADDRESS" in results[1].reason and "Email" in results[1].reason
    assert set(records(sandbox)) == {"C00000", "C00002"}


def test_injected_rejections_match_the_state(sandbox):
    sandbox.faults("salesforce", row_reject_rate=0.4, seed=3)
    client = sandbox.client("salesforce", **OPTIONS["salesforce"])
    batch = batch_for(client, 30)
    results = client.send("upsert", batch)
    stored = set(records(sandbox))
    assert 0 < sum(not r.ok for r in results) < 30
    for key, result in zip(batch["external_id"], results, strict=True):
        assert result.ok == (key in stored)


def test_spent_allocation_stops_the_sync(sandbox):
    sandbox.faults("salesforce", rate_limits={"requests": 1, "window_seconds": 86400})
    client = sandbox.client("salesforce", **OPTIONS["salesforce"])
    client.send("upsert", batch_for(client, 1))
    with pytest.raises(QuotaExhausted) as err:
        client.send("upsert", batch_for(client, 1, start=1))
    assert "REQUEST_LIMIT_EXCEEDED" in err.value.reason and err.value.status == 403


def test_removal_is_not_offered(sandbox):
    client = sandbox.client("salesforce", **OPTIONS["salesforce"])
    assert "mirror" not in client.capabilities.modes
    with pytest.raises(DestinationConfigError):
        client.send("remove", batch_for(client, 1))


def test_unknown_api_version_path_is_a_configuration_error(sandbox):
    client = sandbox.client("salesforce", **OPTIONS["salesforce"])
    client.path = client.path.replace("/v62.0/", "/vX/")
    with pytest.raises(DestinationConfigError):
        client.send("upsert", batch_for(client, 1))
