"""Meta custom audiences and Google Data Manager against the sandbox: hashed identifiers in and out."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from activations.destinations.base import BatchPart, BatchRefused

from .rows import people, prepared
from .setups import OPTIONS, batch_for


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- Meta -------------------------------------------------------------------------------------


def meta_members(sandbox) -> list[dict]:
    audience = sandbox.state("meta")["audiences"].get("6001")
    return audience["members"] if audience else []


def test_meta_adds_hashed_members_with_a_schema_from_the_columns(sandbox):
    client = sandbox.client("meta", **OPTIONS["meta"])
    batch = batch_for(client, 3)
    assert [c for c in batch.columns if c != "_key"] == ["email", "phone", "external_id"]
    results = client.send("upsert", batch)
    assert all(r.ok for r in results)
    members = meta_members(sandbox)
    assert {m["EMAIL"] for m in members} == {sha(f"person{i}@example.com") for i in range(3)}
    assert {m["PHONE"] for m in members} == {sha(f"39333{i:07d}") for i in range(3)}  # digits, no "+"
    assert {m["EXTERN_ID"] for m in members} == {"C00000", "C00001", "C00002"}  # never hashed


def test_meta_multi_key_rows_with_unknown_fields(sandbox):
    client = sandbox.client("meta", **OPTIONS["meta"])
    frame = people(2, first_name=["Ann", "José"], country=["IT", None]).drop("phone", "external_id")
    results = client.send("upsert", prepared(client, frame))
    assert all(r.ok for r in results)
    by_email = {m["EMAIL"]: m for m in meta_members(sandbox)}
    assert by_email[sha("person1@example.com")]["FN"] == sha("josé")
    assert "COUNTRY" not in by_email[sha("person1@example.com")]  # "" is Meta's unknown


def test_meta_remove_uses_delete(sandbox):
    client = sandbox.client("meta", **OPTIONS["meta"])
    batch = batch_for(client, 3)
    client.send("upsert", batch)
    assert all(r.ok for r in client.send("remove", batch.head(2)))
    assert [m["EXTERN_ID"] for m in meta_members(sandbox)] == ["C00002"]


def test_meta_invalid_entries_map_back_to_rows(sandbox):
    sandbox.faults("meta", row_reject_rate=0.3, seed=11)
    client = sandbox.client("meta", **OPTIONS["meta"])
    batch = batch_for(client, 20)
    results = client.send("upsert", batch)
    stored = {m["EXTERN_ID"] for m in meta_members(sandbox)}
    assert 0 < sum(not r.ok for r in results) <= 10  # Meta samples at most 10 invalid entries
    for key, result in zip(batch["external_id"], results, strict=True):
        assert result.ok == (key in stored)


def test_meta_rows_that_are_not_hashed_are_rejected_before_sending(sandbox):
    client = sandbox.client("meta", **OPTIONS["meta"])
    batch = pl.DataFrame({"_key": ["a", "b"], "email": [sha("a@example.com"), "raw@example.com"]})
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False] and results[1].status is None
    assert len(meta_members(sandbox)) == 1


def test_meta_parts_share_one_session(sandbox, monkeypatch):
    client = sandbox.client("meta", **OPTIONS["meta"])
    sessions = []
    original = client.http.request

    def spy(method, path, **kwargs):
        sessions.append(kwargs["json_body"].get("session"))
        return original(method, path, **kwargs)

    monkeypatch.setattr(client.http, "request", spy)
    for seq in (1, 2, 3):
        part = BatchPart(seq=seq, is_last=seq == 3, total_rows=6, run_id="run-42")
        assert all(r.ok for r in client.send("upsert", batch_for(client, 2, start=seq * 2), part))
    assert len({s["session_id"] for s in sessions}) == 1
    assert [(s["batch_seq"], s["last_batch_flag"], s["estimated_num_total"]) for s in sessions] == [
        (1, False, 6),
        (2, False, 6),
        (3, True, 6),
    ]
    assert len(meta_members(sandbox)) == 6


# -- Google -----------------------------------------------------------------------------------


def google_members(sandbox) -> list[dict]:
    user_list = sandbox.state("google")["user_lists"].get("7001")
    return user_list["members"] if user_list else []


def test_google_ingests_hex_sha256_with_consent(sandbox):
    client = sandbox.client("google", **OPTIONS["google"])
    assert client.capabilities.email_normalization == "strip_whitespace"
    frame = people(2).with_columns(pl.Series("email", [" Person 0@Example.com", "person1@example.com"]))
    results = client.send("upsert", prepared(client, frame))
    assert all(r.ok for r in results)
    members = google_members(sandbox)
    assert sorted(m["emailAddress"][0] for m in members) == sorted(
        [sha("person0@example.com"), sha("person1@example.com")]
    )
    assert {m["phoneNumber"][0] for m in members} == {sha("+393330000000"), sha("+393330000001")}
    assert sandbox.state("google")["user_lists"]["7001"]["operating_account"]["accountId"] == "1234567890"


def test_google_remove(sandbox):
    client = sandbox.client("google", **OPTIONS["google"])
    batch = batch_for(client, 3)
    client.send("upsert", batch)
    assert all(r.ok for r in client.send("remove", batch.tail(1)))
    assert len(google_members(sandbox)) == 2


def test_google_refuses_the_batch_naming_the_bad_members(sandbox):
    sandbox.faults("google", row_reject_rate=0.3, seed=5)
    client = sandbox.client("google", **OPTIONS["google"])
    batch = batch_for(client, 20)
    with pytest.raises(BatchRefused) as err:
        client.send("upsert", batch)
    rejected = err.value.rejected_rows
    assert 0 < len(rejected) < 20 and err.value.status == 400
    assert google_members(sandbox) == []  # fast fail: nothing was applied
    # The engine sets the named rows aside and sends the rest, which now go through.
    rest = batch.with_row_index("_pos").filter(~pl.col("_pos").is_in(list(rejected))).drop("_pos")
    assert all(r.ok for r in client.send("upsert", rest))
    assert len(google_members(sandbox)) == 20 - len(rejected)
