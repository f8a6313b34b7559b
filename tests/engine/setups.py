"""What the engine's integration tests share: an audience in a real DuckDB file, a `Sync` per
destination type, clients pointed at the sandbox, and what each destination holds afterwards.

A plain module (not conftest) so the kill -9 script can build the very same sync in a subprocess.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import requests

from activations.destinations.base import Destination
from activations.destinations.config import DestinationConfig, build_client, env_prefix
from activations.engine.deliver import RetryPolicy
from activations.engine.run import run_sync
from activations.erasure import Subject, request_erasure
from activations.manifest import DEFAULT_GUARDS, Audience, Sync
from tests.destinations.setups import OPTIONS as DESTINATION_OPTIONS
from tests.destinations.setups import destination_config, hubspot_list

SANDBOX_TYPES = ("hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook",
                 "meta_conversions", "google_conversions", "meta_catalog", "google_merchant")
# Distinctive secrets: a test greps logs, errors and tables for them.
TOKENS = {t: f"sekret-{t}-Vb7Kq2Xw9Jm4Tz" for t in SANDBOX_TYPES}

AUDIENCE = "audiences.aud_test"
COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name", "score", "consent")

# A policy for tests: the platforms' own signals still count, our own back-off is short.
FAST_POLICY = RetryPolicy(max_tries=8, base_delay=0.02, max_delay=0.3)

OPTIONS: dict[str, dict[str, Any]] = {**DESTINATION_OPTIONS, "file_export": {}}

# Destination field -> audience column, per type (None: the platform takes identifiers only).
FIELDS: dict[str, dict[str, str]] = {
    "hubspot": {"firstname": "first_name"},
    "salesforce": {"LastName": "last_name", "FirstName": "first_name", "Email": "email"},
    "meta": {},
    "google": {},
    "mailchimp": {"FNAME": "first_name"},
    "sendgrid": {"first_name": "first_name"},
    "brevo": {"FIRSTNAME": "first_name"},
    "webhook": {"first_name": "first_name", "score": "score"},
    "file_export": {"first_name": "first_name"},
}
# Where a destination keeps the audience's `first_name` (None: it keeps no fields).
FIRST_NAME_FIELD = {"hubspot": "firstname", "salesforce": "FirstName", "mailchimp": "FNAME",
                    "sendgrid": "first_name", "brevo": "FIRSTNAME", "webhook": "first_name",
                    "file_export": "first_name", "meta": None, "google": None}
MODES = {"salesforce": "upsert"}  # every other type is synced as a mirror


# -- the warehouse ----------------------------------------------------------------------------------


def create_audience(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists audiences")
    con.execute(f"""create or replace table {AUDIENCE} (customer_id varchar, email varchar, phone varchar,
                    first_name varchar, last_name varchar, score integer, consent boolean)""")


def add_people(con: duckdb.DuckDBPyConnection, n: int, start: int = 0) -> None:
    """`n` consenting people c<start>..: distinct emails, phones and names."""
    con.execute(f"""insert into {AUDIENCE}
        select 'c' || i, 'person' || i || '@example.com', '+39 333 ' || lpad(cast(i as varchar), 7, '0'),
               'First' || i, 'Last' || i, i, true
        from range({start}, {start + n}) as t(i)""")


def eligible(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """customer_id -> (email, first_name) of every row a sync may send (key present, consent given)."""
    rows = con.execute(f"""select customer_id, lower(trim(email)), first_name from {AUDIENCE}
                           where customer_id is not null and consent""").fetchall()
    return {key: (email, first) for key, email, first in rows}


# -- syncs and clients ----------------------------------------------------------------------------


def make_sync(dest_type: str, *, mode: str | None = None, name: str | None = None,
              destination: str | None = None, **changes: Any) -> Sync:
    """A sync of aud_test to one destination of `dest_type`, with sensible identifiers and fields."""
    audience = Audience("aud_test", AUDIENCE, "", COLUMNS)
    identifiers = {"external_id": "customer_id"} if dest_type == "salesforce" else {"email": "email"}
    sync = Sync(name=name or f"aud_test__{dest_type}", audience=audience, destination=destination or f"t_{dest_type}",
                mode=mode or MODES.get(dest_type, "mirror"), key="customer_id", identifiers=identifiers,
                fields=dict(FIELDS[dest_type]), consent="consent", guards=dict(DEFAULT_GUARDS))
    return replace(sync, **changes) if changes else sync


def make_config(base: str, dest_type: str, *, name: str | None = None, token: str | None = None,
                folder: Path | None = None, **options: Any) -> DestinationConfig:
    """The configuration of a `dest_type` instance pointed at the sandbox (file_export writes to `folder`)."""
    name = name or f"t_{dest_type}"
    prefix = env_prefix(name)
    settings = {**OPTIONS[dest_type], **options}
    env = {}
    if dest_type == "file_export":
        settings["folder"] = str(folder)
    else:
        env = {f"{prefix}_URL": f"{base}/{dest_type}", f"{prefix}_TOKEN": token or TOKENS[dest_type]}
    return destination_config(name, dest_type, settings, env)


def make_client(base: str, dest_type: str, *, name: str | None = None, token: str | None = None,
                folder: Path | None = None, **options: Any) -> Destination:
    """A client for `dest_type` pointed at the sandbox (file_export writes to `folder`)."""
    return build_client(make_config(base, dest_type, name=name, token=token, folder=folder, **options))


# -- what the destination holds -------------------------------------------------------------------


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sandbox_state(base: str, dest_type: str) -> dict[str, Any]:
    answer = requests.get(f"{base}/_sandbox/state/{dest_type}", timeout=10)
    answer.raise_for_status()
    return answer.json()


def held(base: str, dest_type: str, folder: Path | None = None) -> dict[str, str | None]:
    """What the sync's list/audience at the destination holds: identity -> first name (None: not kept).

    The identity is what the platform knows a person by: the email (hashed for Meta and Google),
    the external id for Salesforce, the row key for the webhook and file export.
    """
    if dest_type == "file_export":
        return _files_held(folder)
    state = sandbox_state(base, dest_type)
    if dest_type == "hubspot":
        by_id = {c["id"]: (email, c["properties"].get("firstname")) for email, c in state["contacts"].items()}
        members = hubspot_list(state)
        assert len(members) == len(set(members)), "a contact is in the list twice"
        return dict(by_id[m] for m in members)
    if dest_type == "salesforce":
        records = state["objects"].get("Contact", {}).get("Attiva_Id__c", {})
        return {key: record.get("FirstName") for key, record in records.items()}
    if dest_type == "meta":
        audience = state["audiences"].get("6001", {"members": []})
        return {member["EMAIL"]: None for member in _members(audience["members"])}
    if dest_type == "google":
        user_list = state["user_lists"].get("7001", {"members": []})
        return {email: None for member in _members(user_list["members"]) for email in member["emailAddress"]}
    if dest_type == "mailchimp":
        lst = state["lists"].get("a1b2c3", {"members": {}, "segments": {}})
        segment = lst["segments"].get("8001", [])
        assert len(segment) == len(set(segment))
        return {lst["members"][h]["email_address"]: lst["members"][h]["merge_fields"].get("FNAME") for h in segment}
    if dest_type == "sendgrid":
        by_id = {c["id"]: (email, c.get("first_name")) for email, c in state["contacts"].items()}
        members = state["lists"].get("list-9001", [])
        assert len(members) == len(set(members))
        return dict(by_id[m] for m in members)
    if dest_type == "brevo":
        members = state["lists"].get("7", [])
        assert len(members) == len(set(members))
        return {email: (state["contacts"][email].get("attributes") or {}).get("FIRSTNAME") for email in members}
    if dest_type == "webhook":
        rows = state["endpoints"].get("/hooks/crm", {"rows": {}})["rows"]
        return {key: row.get("first_name") for key, row in rows.items()}
    raise ValueError(dest_type)


def _members(members: Any) -> list[dict[str, Any]]:
    return list(members.values()) if isinstance(members, dict) else list(members)


def _files_held(folder: Path | None) -> dict[str, str | None]:
    """Replay the exported files in the order they were written: upserts add, removes take out."""
    files = sorted((p for p in (folder.iterdir() if folder and folder.exists() else []) if p.suffix == ".csv"),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    holding: dict[str, str | None] = {}
    for path in files:
        frame = pl.read_csv(path, infer_schema=False)
        if "__remove__" in path.name:
            for key in frame["key"]:
                holding.pop(key, None)
        else:
            holding.update(zip(frame["key"], frame["first_name"], strict=True))
    return holding


def expected(con: duckdb.DuckDBPyConnection, dest_type: str) -> dict[str, str | None]:
    """What `held` should answer when the destination equals the eligible audience."""
    keeps_names = FIRST_NAME_FIELD[dest_type] is not None
    out: dict[str, str | None] = {}
    for key, (email, first) in eligible(con).items():
        identity = {"salesforce": key, "webhook": key, "file_export": key,
                    "meta": sha256(email), "google": sha256(email)}.get(dest_type, email)
        out[identity] = first if keeps_names else None
    return out


def requests_served(base: str, dest_type: str) -> int:
    """How many requests the sandbox answered for `dest_type` since the last reset."""
    return int(sandbox_state(base, dest_type)["requests"]["requests"])


# -- conversions ------------------------------------------------------------------------------------


def sync_rejects(con: duckdb.DuckDBPyConnection, sync_name: str) -> dict[str, str]:
    """row key -> reason of every row `sync_name` has set aside."""
    return dict(con.execute("select row_key, reason from activation.sync_rejects where sync_name = ?",
                            [sync_name]).fetchall())


def forget_after_sending(con: duckdb.DuckDBPyConnection, base: str, sync: Sync, client: Destination,
                         dest_type: str) -> None:
    """Send four orders O000000..3 (customers c0..c3), then forget c2: a platform with no deletion of the
    conversions it received is asked nothing (no erasure recorded), the snapshot (keyed by order id) loses
    the order found by c2's digests, and the next run sends nothing (the order is still in the table)."""
    run_sync(con, sync, client, policy=FAST_POLICY)
    snapshot = "select row_key from activation.sync_snapshots where sync_name = ? order by row_key"
    assert [r[0] for r in con.execute(snapshot, [sync.name]).fetchall()] == [f"O{i:06d}" for i in range(4)]
    request_erasure(con, "c2", Subject(customers=["c2"], emails={"person2@example.com"}, phones={"+393330000002"}),
                    {sync.destination: make_config(base, dest_type)}, datetime.now(UTC).replace(tzinfo=None))
    assert [r[0] for r in con.execute(snapshot, [sync.name]).fetchall()] == ["O000000", "O000001", "O000003"]
    assert con.execute("select count(*) from activation.erasure_destinations").fetchone()[0] == 0
    again = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (again.planned, again.sent) == (0, 0)
