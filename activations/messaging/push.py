"""Mobile push's own records: which device tokens a customer can be reached on, which are retired, and what the
provider said about each token of each message.

A push channel (one whose client's `recipient` is "push": fcm_push) is addressed to the customer's active device
tokens, `marts.customer_push_tokens` (the app's registrations, latest per installation), minus the tokens on
`activation.push_tokens_retired`: those the provider said are gone (FCM's UNREGISTERED: the app was uninstalled
or the token expired) and those of a person `attiva forget` erased. A retired token is never sent to again, even
when a later landing file still lists it. Tokens are kept there, and in `activation.push_deliveries` (one row
per message and token), only as their SHA-256: the marts hold the tokens themselves.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import datetime

import polars as pl

from activations.engine.dialect import has_table
from activations.messaging.delivery import PushResult

TOKENS = "marts.customer_push_tokens"


def token_sha256(token: str) -> str:
    """How a device token is kept in the activation tables: SHA-256 hex of the token."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def retired(con) -> set[str]:
    """The SHA-256 of every retired token."""
    return {r[0] for r in con.execute("select token_sha256 from activation.push_tokens_retired").fetchall()}


def active_tokens(con, customer_ids: Iterable[str]) -> dict[str, list[str]]:
    """customer id -> the device tokens a push may go to now (newest registration first), retired ones left out."""
    wanted = sorted(set(customer_ids))
    if not wanted or not has_table(con, "marts", "customer_push_tokens"):
        return {}
    view = f"_attiva_push_{uuid.uuid4().hex[:8]}"
    con.register(view, pl.DataFrame({"customer_id": wanted}).to_arrow())
    try:
        rows = con.sql(f"""
            select t.customer_id, t.push_token from {TOKENS} as t
            join {view} as w on w.customer_id = t.customer_id
            order by t.customer_id, t.registered_at desc, t.push_token""").fetchall()
    finally:
        con.unregister(view)
    gone = retired(con)
    found: dict[str, list[str]] = {}
    for customer_id, token in rows:
        if token and token_sha256(token) not in gone:
            found.setdefault(customer_id, []).append(token)
    return found


def retire(con, tokens: Iterable[str], reason: str, now: datetime) -> int:
    """Put `tokens` on the retired list (once each); how many were new."""
    gone = retired(con)
    new = sorted({token_sha256(t) for t in tokens if t} - gone)
    if new:
        con.executemany("insert into activation.push_tokens_retired values (?, ?, ?)",
                        [[h, reason, now.replace(tzinfo=None)] for h in new])
    return len(new)


def record_results(con, results: Iterable[tuple[str, PushResult]], now: datetime) -> None:
    """One `activation.push_deliveries` row per (message id, token's result)."""
    rows = [[message_id, r.token_sha256, r.outcome, r.detail, now.replace(tzinfo=None)] for message_id, r in results]
    if rows:
        con.executemany("insert into activation.push_deliveries values (?, ?, ?, ?, ?)", rows)
