"""Mailchimp, SendGrid and Brevo against the sandbox: list upserts, per-row errors and list removal."""

from __future__ import annotations

import hashlib

import polars as pl

from .rows import people
from .setups import OPTIONS, batch_for


def md5(email: str) -> str:
    return hashlib.md5(email.encode()).hexdigest()


# -- Mailchimp --------------------------------------------------------------------------------


def test_mailchimp_upsert_joins_the_segment(sandbox):
    client = sandbox.client("mailchimp", **OPTIONS["mailchimp"])
    batch = batch_for(client, 3)
    results = client.send("upsert", batch)
    assert all(r.ok for r in results)
    assert [r.destination_id for r in results] == [md5(e) for e in batch["email"]]
    lst = sandbox.state("mailchimp")["lists"]["a1b2c3"]
    assert lst["members"][md5("person1@example.com")]["merge_fields"] == {"FNAME": "Name1"}
    assert lst["members"][md5("person1@example.com")]["status"] == "subscribed"
    assert sorted(lst["segments"]["8001"]) == sorted(md5(e) for e in batch["email"])


def test_mailchimp_errors_map_by_email(sandbox):
    client = sandbox.client("mailchimp", **OPTIONS["mailchimp"])
    batch = people(3).with_columns(pl.Series("email", ["a@example.com", "nope", "c@example.com"]))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True]
    assert "invalid" in results[1].reason


def test_mailchimp_injected_rejections_match_the_state(sandbox):
    sandbox.faults("mailchimp", row_reject_rate=0.3, seed=2)
    client = sandbox.client("mailchimp", **OPTIONS["mailchimp"])
    batch = batch_for(client, 30)
    results = client.send("upsert", batch)
    segment = set(sandbox.state("mailchimp")["lists"]["a1b2c3"]["segments"]["8001"])
    assert 0 < sum(not r.ok for r in results) < 30
    for email, result in zip(batch["email"], results, strict=True):
        assert result.ok == (md5(email) in segment)


def test_mailchimp_remove_leaves_the_segment_not_the_list(sandbox):
    client = sandbox.client("mailchimp", **OPTIONS["mailchimp"])
    batch = batch_for(client, 3)
    client.send("upsert", batch)
    results = client.send("remove", batch.head(2).vstack(batch_for(client, 1, start=50)))
    assert all(r.ok for r in results)  # one was never there: removal is already done
    lst = sandbox.state("mailchimp")["lists"]["a1b2c3"]
    assert lst["segments"]["8001"] == [md5("person2@example.com")]
    assert len(lst["members"]) == 3


# -- SendGrid ---------------------------------------------------------------------------------


def test_sendgrid_upsert_waits_for_the_import(sandbox):
    client = sandbox.client("sendgrid", **OPTIONS["sendgrid"])
    batch = batch_for(client, 3)
    assert all(r.ok for r in client.send("upsert", batch))
    state = sandbox.state("sendgrid")
    contact = state["contacts"]["person1@example.com"]
    assert contact["first_name"] == "Name1" and contact["custom_fields"] == {"tier": "gold"}
    assert len(state["lists"]["list-9001"]) == 3


def test_sendgrid_errors_from_the_report_map_back_to_rows(sandbox):
    client = sandbox.client("sendgrid", **OPTIONS["sendgrid"])
    batch = people(4, first_name=["a", "b", "c", "d"]).select("_key", "email", "first_name")
    batch = batch.with_columns(pl.Series("email", ["a@example.com", "broken", "c@example.com", "a@example.com"]))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True, True]  # the repeated address is sent once
    assert "email is invalid" in results[1].reason
    assert set(sandbox.state("sendgrid")["contacts"]) == {"a@example.com", "c@example.com"}


def test_sendgrid_remove_looks_ids_up_and_leaves_the_list(sandbox):
    client = sandbox.client("sendgrid", **OPTIONS["sendgrid"])
    batch = batch_for(client, 3)
    client.send("upsert", batch)
    results = client.send("remove", batch.head(2).vstack(batch_for(client, 1, start=70)))
    assert all(r.ok for r in results)
    assert results[0].destination_id and results[2].destination_id is None
    state = sandbox.state("sendgrid")
    assert state["lists"]["list-9001"] == [state["contacts"]["person2@example.com"]["id"]]
    assert len(state["contacts"]) == 3  # contacts stay; only membership changes


# -- Brevo ------------------------------------------------------------------------------------


def test_brevo_upsert_imports_then_confirms_membership(sandbox):
    client = sandbox.client("brevo", **OPTIONS["brevo"])
    batch = batch_for(client, 3)
    assert all(r.ok for r in client.send("upsert", batch))
    state = sandbox.state("brevo")
    assert sorted(state["lists"]["7"]) == sorted(batch["email"])
    assert state["contacts"]["person0@example.com"]["attributes"] == {"FIRSTNAME": "Name0"}


def test_brevo_failures_map_by_email(sandbox):
    client = sandbox.client("brevo", **OPTIONS["brevo"])
    batch = people(3).select("_key", "email").with_columns(pl.Series("email", ["a@example.com", "x@", "c@example.com"]))
    assert [r.ok for r in client.send("upsert", batch)] == [True, False, True]


def test_brevo_without_creating_contacts_only_adds_known_ones(sandbox):
    client = sandbox.client("brevo", name="brevo_known", create_contacts=False, **OPTIONS["brevo"])
    assert not client.capabilities.accepts_fields
    assert [r.ok for r in client.send("upsert", batch_for(client, 2))] == [False, False]


def test_brevo_remove(sandbox):
    client = sandbox.client("brevo", **OPTIONS["brevo"])
    batch = batch_for(client, 3)
    client.send("upsert", batch)
    results = client.send("remove", batch.head(1).vstack(batch_for(client, 1, start=80)))
    assert all(r.ok for r in results) and results[1].reason == "brevo: was not in the list"
    assert sorted(sandbox.state("brevo")["lists"]["7"]) == ["person1@example.com", "person2@example.com"]
