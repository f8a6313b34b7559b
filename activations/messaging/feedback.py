"""Engagement feedback: what the email service provider reports comes back as landing files, and
the addresses that must not be written to again go on the suppression list.

Two ways in, one format out. An ESP's export already follows the landing contract's
`email_engagement` source; a SendGrid Event Webhook batch (the JSON array SendGrid posts, or
the sandbox's, see activations/sandbox/engagement.py) is turned into the same columns by
:func:`engagement_rows` and written by :func:`write_landing_file` into
`<landing>/email_engagement/`, where the next ingestion loads it like any export.

:func:`refresh_suppressions` runs at the start of every messaging pass: hard bounces,
unsubscribes and spam complaints in `raw.email_engagement` add the address (SHA-256 of the
trimmed, lower-cased email, as the send step hashes it) to `activation.suppression_list`.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from activations.messaging import ledger

ENGAGEMENT_FOLDER = "email_engagement"
# SendGrid event -> the contract's event_type; the others (processed, deferred, dropped,
# group_resubscribe) say nothing about the recipient and are not landed.
SENDGRID_EVENTS = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
SUPPRESSING = {"complaint": "spam complaint", "unsubscribe": "unsubscribed", "bounce": "hard bounce"}


def email_sha256(email: str) -> str:
    """The suppression list's key: SHA-256 of the trimmed, lower-cased address (as send.py hashes it)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _has_table(con, schema: str, table: str) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = ?", [schema, table]).fetchone()[0])


def refresh_suppressions(con, now: datetime | None = None) -> int:
    """Add hard-bounced, unsubscribed and complaining addresses from `raw.email_engagement` to the
    suppression list; idempotent (an address already listed, for any reason, is left alone).
    Returns how many addresses were added."""
    ledger.ensure_ledger(con)
    if not _has_table(con, "raw", "email_engagement"):
        return 0
    rows = con.execute("""
        select lower(trim(email)) as email, lower(trim(event_type)) as event_type, min(occurred_at) as first_at
        from raw.email_engagement
        where email is not null and trim(email) <> ''
          and (lower(trim(event_type)) in ('unsubscribe', 'complaint')
               or (lower(trim(event_type)) = 'bounce' and lower(trim(coalesce(bounce_type, ''))) = 'hard'))
        group by lower(trim(email)), lower(trim(event_type))
        order by 3""").fetchall()
    if not rows:
        return 0
    listed = {r[0] for r in con.execute("select email_sha256 from activation.suppression_list").fetchall()}
    added: dict[str, tuple[str, str]] = {}
    for email, event_type, first_at in rows:
        digest = email_sha256(email)
        if digest in listed or digest in added:
            continue
        when = f" on {first_at:%Y-%m-%d}" if isinstance(first_at, datetime) else ""
        added[digest] = (digest, f"{SUPPRESSING[event_type]}{when} (email engagement)")
    if added:
        stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
        rows = pl.DataFrame({"email_sha256": list(added), "reason": [r for _, r in added.values()]})
        view = f"_attiva_suppress_{uuid.uuid4().hex[:8]}"
        con.register(view, rows.to_arrow())  # one statement, however many addresses (executemany is per row)
        try:
            con.execute(f"insert into activation.suppression_list (email_sha256, reason, added_at) "
                        f"select email_sha256, reason, ? from {view}", [stamp])
        finally:
            con.unregister(view)
    return len(added)


# -- SendGrid Event Webhook -> landing file -------------------------------------------------------


def _bare_message_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().strip("<>")


def engagement_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """SendGrid Event Webhook objects as rows of the `email_engagement` landing contract.

    The message id is Attiva's own (custom arg `attiva_message_id`, else the `smtp-id` header),
    so measurement matches events to ledger rows; the campaign is the `attiva_campaign` custom
    arg, else the first category. A `bounce` of type `blocked` is a soft bounce, else hard.
    """
    rows = []
    for event in events:
        kind = SENDGRID_EVENTS.get(str(event.get("event", "")).lower())
        email = event.get("email")
        timestamp = event.get("timestamp")
        if kind is None or not isinstance(email, str) or not isinstance(timestamp, int | float):
            continue
        categories = event.get("category")
        if isinstance(categories, str):
            categories = [categories]
        campaign = event.get("attiva_campaign") or (categories[0] if categories else None)
        message_id = _bare_message_id(event.get("attiva_message_id")) or _bare_message_id(event.get("smtp-id"))
        event_id = event.get("sg_event_id") or hashlib.sha256(
            json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()[:22]
        rows.append({
            "engagement_id": str(event_id),
            "email": email,
            "event_type": kind,
            "occurred_at": datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "campaign": campaign,
            "message_id": message_id or _bare_message_id(event.get("sg_message_id")),
            "bounce_type": ("soft" if event.get("type") == "blocked" else "hard") if kind == "bounce" else None,
            "url": event.get("url") if kind == "click" else None,
        })
    return rows


def write_landing_file(rows: list[dict[str, Any]], landing: Path | str, prefix: str = "sendgrid-events") -> Path | None:
    """Write engagement rows as one JSON-lines file under `<landing>/email_engagement/`; None if no rows.

    The name carries the content's digest: the same batch written twice is one file, which
    ingestion's file ledger loads once. Written to a hidden file first and renamed, so ingestion
    never reads half a file.
    """
    if not rows:
        return None
    body = b"".join(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n" for row in rows)
    digest = hashlib.sha256(body).hexdigest()[:12]
    folder = Path(landing) / ENGAGEMENT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}.jsonl"
    existing = sorted(folder.glob(f"{prefix}-*-{digest}.jsonl"))
    if existing:
        return existing[0]
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(body)
    os.replace(tmp, path)
    return path
