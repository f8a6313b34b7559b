"""Erasure at the destinations: a tracked request per `attiva forget`, driven until every destination
that may hold the person confirmed it deleted them, with the platform's own deletion API.

`request_erasure` (called by activations/forget.py) records:
- `activation.erasure_requests`: the request id, when, the SHA-256 of who was named, how many customers
  matched. No personal data.
- `activation.erasure_destinations`: one row per destination instance to reach: pending or confirmed,
  records to delete, attempts, the last error (identifier values scrubbed out), when confirmed.
- `activation.erasure_work`: what each destination needs to find the person (its prepared identifiers,
  its own record id), copied from the syncs' snapshots plus the person's own identifiers. Deleted as
  soon as that destination confirmed: the only place personal data waits, and only for this purpose.
- `activation.erased_hashes`: the SHA-256 of every identifier value; the engine's plan never sends a
  row that hashes to one of them again (activations/engine/plan.py), even from a late landing file.
It then deletes the person's rows from every sync's snapshot, rejects and plan (rows keyed by something
else, such as a conversion by its order id, by the person's hashed identifiers they carry): the destinations
are reached through the erasure, never through a sync's removal (which only leaves a list). A destination
that holds no person to delete (Meta's Conversions API keeps events, not people) is not asked.

`drive_erasures` tries every pending (request, destination): at `attiva forget`, before every run of a
sync to that destination (activations/syncs.py), and with `attiva forget --retry`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from activations.destinations.base import DESTINATION_ID_COLUMN, KEY_COLUMN, DestinationError, can_erase
from activations.destinations.config import DestinationConfig, build_client, destination_class
from activations.destinations.identifiers import prepare_identifiers
from activations.engine.dialect import delete, update
from activations.engine.state import ensure_state

# The person's own identifiers tried at every destination that knows people by identifiers: a contact
# a mirror sync took out of its list is still in the platform's contacts, and no snapshot says so.
OWN_KINDS = ("email", "phone", "external_id")
ENGINE_TABLES_BY_KEY = ("sync_snapshots", "sync_rejects", "sync_plan_rows", "sync_confirmations", "sync_row_errors")
# Syncs whose rows name no one (a catalog's products, kept with `{}` as identifiers): a person's key that
# happens to equal a product id is not that product.
PERSONAL_SYNCS = "sync_name not in (select sync_name from activation.sync_snapshots where identifiers = '{}')"


@dataclass
class Subject:
    """Who is erased: what forget found in the warehouse."""

    customers: list[str]
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    other_ids: set[str] = field(default_factory=set)  # source ids (CRM contact id, device id, ...)

    @property
    def keys(self) -> set[str]:
        """The row keys syncs may know them by (syncs are keyed on customer id or email)."""
        return set(self.customers) | self.emails


@dataclass(frozen=True)
class DestinationStatus:
    request_id: str
    requested_at: datetime
    destination: str
    status: str
    records: int
    attempts: int
    last_error: str | None
    confirmed_at: datetime | None


def sha256(value: str) -> str:
    """The digest erased values are kept as: SHA-256 of the trimmed, lower-cased text."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


def request_erasure(con, who: str, subject: Subject, destinations: Mapping[str, DestinationConfig],
                    now: datetime) -> str:
    """Record the erasure of `subject` at every destination that may hold them; returns the request id."""
    ensure_state(con)
    request_id = uuid.uuid4().hex[:12]
    con.execute("insert into activation.erasure_requests values (?, ?, ?, ?)",
                [request_id, now, sha256(who), len(subject.customers)])
    hashes = sorted({sha256(v) for v in subject.keys | subject.phones | subject.other_ids})
    if hashes:
        con.executemany("insert into activation.erased_hashes values (?, ?)", [[h, request_id] for h in hashes])
    keys = sorted(subject.keys)
    held = _held_by_destination(con, keys)
    for name in sorted(set(held) | set(destinations)):
        rows = list(held.get(name, []))
        config = destinations.get(name)
        if config is not None:
            rows += _own_identifiers(subject, config)
        rows = _unique(rows)
        if not rows:
            continue
        con.executemany("insert into activation.erasure_work values (?, ?, ?, ?, ?)",
                        [[request_id, name, *row] for row in rows])
        con.execute("insert into activation.erasure_destinations values (?, ?, 'pending', ?, 0, ?, null, null)",
                    [request_id, name, len(rows), None if config else f"{name} is not in destinations.yml"])
    if keys:
        marks = ", ".join("?" for _ in keys)
        for table in ENGINE_TABLES_BY_KEY:
            delete(con, f"activation.{table}", f"row_key in ({marks}) and {PERSONAL_SYNCS}", keys)
    _forget_rows_naming(con, subject, hashes)
    return request_id


def _forget_rows_naming(con, subject: Subject, hashes: list[str]) -> None:
    """Rows keyed by something other than the person (a conversion, by its order id) still name them in their
    prepared identifiers: those holding one of the person's digests go too. Matched as the destinations hash
    (an address trimmed and lower-cased, a customer id as written, a phone as digits with or without +)."""
    digests = set(hashes) | {hashlib.sha256(c.strip().encode()).hexdigest() for c in subject.customers}
    digits = {"".join(ch for ch in phone if ch.isdigit()) for phone in subject.phones}
    digests |= {hashlib.sha256(d.encode()).hexdigest() for d in digits if d}
    digests |= {hashlib.sha256(f"+{d}".encode()).hexdigest() for d in digits if d}
    if not digests:
        return
    found = " or ".join("identifiers like ?" for _ in digests)
    for table in ("sync_snapshots", "sync_confirmations"):
        delete(con, f"activation.{table}", f"identifiers is not null and ({found})",
               [f"%{digest}%" for digest in sorted(digests)])


def _held_by_destination(con, keys: list[str]) -> dict[str, list[tuple]]:
    """Snapshot rows of `keys` per destination instance (a sync's destination is the one it last ran to)."""
    if not keys:
        return {}
    marks = ", ".join("?" for _ in keys)
    found: dict[str, list[tuple]] = {}
    for destination, row_key, destination_id, identifiers in con.execute(f"""
            with latest as (
                select sync_name, destination,
                       row_number() over (partition by sync_name order by started_at desc) as n
                from activation.sync_runs
            )
            select l.destination, s.row_key, s.destination_id, s.identifiers
            from activation.sync_snapshots as s
            join latest as l on l.sync_name = s.sync_name and l.n = 1
            where s.row_key in ({marks}) and s.{PERSONAL_SYNCS}""", keys).fetchall():
        found.setdefault(destination, []).append((row_key, destination_id, identifiers))
    return found


def _own_identifiers(subject: Subject, config: DestinationConfig) -> list[tuple]:
    """The person's emails, phones and customer ids, prepared as this destination takes them."""
    capabilities = config.limited(destination_class(config.type).platform_capabilities(config))
    if not capabilities.keyed_by_identifiers:
        return []  # the webhook and file export know rows by key: the snapshot rows say which
    values = {"email": subject.emails, "phone": subject.phones, "external_id": set(subject.customers)}
    kinds = [kind for kind in OWN_KINDS if kind in capabilities.identifiers]
    records = [{k: (value if k == kind else None) for k in kinds} for kind in kinds for value in sorted(values[kind])]
    if not records:
        return []
    frame = pl.DataFrame(records, schema={k: pl.String for k in kinds})
    valid = prepare_identifiers(frame, capabilities).valid
    return [(None, None, json.dumps({k: v for k, v in row.items() if v is not None}, sort_keys=True))
            for row in valid.iter_rows(named=True)]


def _unique(rows: Iterable[tuple]) -> list[tuple]:
    """One row per identifiers, keeping the one that knows a key or a record id."""
    best: dict[str, tuple] = {}
    for row in rows:
        identifiers = _canonical(row[2])
        current = best.get(identifiers)
        if current is None or (current[0] is None and current[1] is None):
            best[identifiers] = (row[0], row[1], identifiers)
    return list(best.values())


def _canonical(identifiers: str | None) -> str:
    try:
        decoded = json.loads(identifiers) if identifiers else {}
    except ValueError:
        decoded = {}
    return json.dumps({k: v for k, v in decoded.items() if v is not None}, sort_keys=True)


# -- driving ------------------------------------------------------------------------------------


def drive_erasures(con, destinations: Mapping[str, DestinationConfig], *, only: str | None = None,
                   now: datetime | None = None) -> list[DestinationStatus]:
    """Try every pending erasure (of destination `only`, if given) once; returns what is still pending."""
    ensure_state(con)
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    pending = con.execute("""select request_id, destination, attempts from activation.erasure_destinations
                             where status = 'pending' order by destination, request_id""").fetchall()
    by_destination: dict[str, list[tuple[str, int]]] = {}
    for request_id, destination, attempts in pending:
        if only is None or destination == only:
            by_destination.setdefault(destination, []).append((request_id, attempts or 0))
    for destination, requests in by_destination.items():
        config = destinations.get(destination)
        if config is None:
            for request_id, attempts in requests:
                _record(con, request_id, destination, attempts, False, f"{destination} is not in destinations.yml",
                        now)
            continue
        try:
            client = build_client(config)
        except DestinationError as exc:
            for request_id, attempts in requests:
                _record(con, request_id, destination, attempts, False, str(exc), now)
            continue
        try:
            for request_id, attempts in requests:
                ok, error = _erase(con, client, request_id, destination)
                _record(con, request_id, destination, attempts, ok, error, now)
        finally:
            client.close()
    return [s for s in erasure_status(con) if s.status == "pending" and (only is None or s.destination == only)]


def _erase(con, client, request_id: str, destination: str) -> tuple[bool, str | None]:
    """One attempt at one destination: (all confirmed, the first error with identifier values scrubbed)."""
    work = con.execute("""select row_key, destination_id, identifiers from activation.erasure_work
                          where request_id = ? and destination = ?""", [request_id, destination]).fetchall()
    if not work:
        return True, None
    if not can_erase(client):
        return False, f"{client.capabilities.type} offers no deletion"
    kinds = list(client.capabilities.identifiers)
    decoded = [json.loads(identifiers or "{}") for _, _, identifiers in work]
    frame = pl.DataFrame({KEY_COLUMN: [r[0] for r in work], DESTINATION_ID_COLUMN: [r[1] for r in work],
                          **{kind: [d.get(kind) for d in decoded] for kind in kinds}},
                         schema={KEY_COLUMN: pl.String, DESTINATION_ID_COLUMN: pl.String,
                                 **{kind: pl.String for kind in kinds}})
    secrets = {str(v) for row in work for v in row[:2] if v} | {str(v) for d in decoded for v in d.values() if v}
    size = client.capabilities.remove_batch_size or client.capabilities.batch_size
    errors: list[str] = []
    try:
        for start in range(0, frame.height, size):
            for result in client.erase(frame.slice(start, size)):
                if not result.ok:
                    errors.append(result.reason or f"refused (status {result.status})")
    except DestinationError as exc:
        errors.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken client leaves the erasure pending, loudly
        errors.append(f"{type(exc).__name__}: {exc}")
    if not errors:
        return True, None
    return False, _scrub(client, errors[0], secrets)


def _scrub(client, text: str, secrets: set[str]) -> str:
    """The error without the secret and without any identifier value (the record holds no personal data)."""
    token = getattr(getattr(client, "config", None), "token", None)
    text = token.redact(text) if token is not None else text
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "[erased]")
    return text[:300]


def _record(con, request_id: str, destination: str, attempts: int, ok: bool, error: str | None,
            now: datetime) -> None:
    values = {"status": "confirmed" if ok else "pending", "attempts": attempts + 1, "last_error": error,
              "last_attempt_at": now}
    if ok:
        values["confirmed_at"] = now
    update(con, "activation.erasure_destinations", values, "request_id = ? and destination = ?",
           [request_id, destination])
    if ok:
        delete(con, "activation.erasure_work", "request_id = ? and destination = ?", [request_id, destination])


def erasure_status(con) -> list[DestinationStatus]:
    """Every erasure request's destinations, newest request first."""
    ensure_state(con)
    rows = con.execute("""
        select r.request_id, r.requested_at, d.destination, d.status, d.records, d.attempts, d.last_error,
               d.confirmed_at
        from activation.erasure_requests as r
        join activation.erasure_destinations as d on d.request_id = r.request_id
        order by r.requested_at desc, r.request_id, d.destination""").fetchall()
    return [DestinationStatus(*row) for row in rows]


def format_status(statuses: list[DestinationStatus], *, pending_only: bool = True) -> str:
    """`attiva forget --status`: what every destination still owes, per request."""
    shown = [s for s in statuses if s.status == "pending" or not pending_only]
    if not shown:
        return "no erasure pending: every destination confirmed every request"
    lines = []
    for s in shown:
        line = (f"{s.request_id}  {s.requested_at:%Y-%m-%d %H:%M}  {s.destination:<16} {s.status:<9} "
                f"{s.records} record(s), {s.attempts} attempt(s)")
        if s.status == "confirmed" and s.confirmed_at:
            line += f", confirmed {s.confirmed_at:%Y-%m-%d %H:%M}"
        if s.status == "pending" and s.last_error:
            line += f"\n    last error: {s.last_error}"
        lines.append(line)
    return "\n".join(lines)
