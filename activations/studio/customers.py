"""The customer pages: find a customer by any identifier, and their profile: customer 360 fields,
consent per channel and its history, their latest events, the messages they received or were spared
(with the reason), the audiences they are in and which records make them one person. A viewer gets
it all with personal data masked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from activations import warehouse
from activations.identity import explain as identity
from activations.messaging.status import why
from activations.studio.audiences import audience_tables, literal, relation
from activations.studio.consent_history import consent_history
from activations.studio.privacy import HIDDEN, mask_email, mask_identifier, masked_profile
from activations.studio.timeline import Timeline, timeline

CONSENT = ("consent_email", "consent_sms", "consent_ads", "consent_profiling", "email_marketable",
           "email_hard_bounced")
MAX_RESULTS = 50


@dataclass(frozen=True)
class Match:
    customer_id: str
    email: str | None
    first_name: str | None


@dataclass
class Profile:
    customer_id: str
    fields: dict[str, Any]  # marts.customers' columns but consent
    consent: dict[str, Any]
    consent_history: list[dict[str, Any]] = field(default_factory=list)
    timeline: Timeline | None = None  # None: no marts.events in this warehouse
    messages: list[dict[str, Any]] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)
    identity: list[dict[str, Any]] | None = None  # None: no customer_identity_explained in this warehouse


def search(con, who: str, personal: bool) -> list[Match]:
    """Customers an email, phone, customer id or other identifier names (activations.identity's rules)."""
    who = who.strip()
    if not who:
        return []
    ids = identity.find_customers(con, who)[:MAX_RESULTS]
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    rows = con.execute(f"select customer_id, email, first_name from marts.customers where customer_id in ({marks}) "
                       "order by customer_id", ids).fetchall()
    if personal:
        return [Match(*row) for row in rows]
    return [Match(cid, mask_email(email), HIDDEN if name else None) for cid, email, name in rows]


def profile(con, customer_id: str, personal: bool) -> Profile | None:
    """One customer's profile, None if no customer has that id; masked unless `personal`."""
    cursor = con.execute("select * from marts.customers where customer_id = ?", [customer_id])
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if not rows:
        return None
    row = dict(zip(names, rows[0], strict=True))
    fields = {k: v for k, v in row.items() if k not in CONSENT}
    found = Profile(customer_id, fields if personal else masked_profile(fields),
                    {k: row[k] for k in CONSENT if k in row})
    found.consent_history = consent_history(con, customer_id, personal)
    found.timeline = timeline(con, customer_id, personal)
    found.messages = why(con, customer_id)[1]
    found.audiences = member_of(con, customer_id)
    if warehouse.has_table(con, "marts", "customer_identity_explained"):
        rows = identity.explain(con, customer_id).rows
        found.identity = rows if personal else [_masked_identity(r) for r in rows]
    return found


def exists(con, customer_id: str) -> bool:
    """Whether marts.customers has this customer now."""
    return con.execute("select count(*) from marts.customers where customer_id = ?", [customer_id]).fetchone()[0] > 0


def member_of(con, customer_id: str) -> list[str]:
    """The audiences whose table holds this customer now."""
    names = audience_tables(con, with_column="customer_id")
    if not names:
        return []
    rows = con.execute(" union all ".join(
        f"select {literal(n)} from {relation(n)} where customer_id = $1 group by all" for n in names)
        + " order by 1", [customer_id]).fetchall()
    return [r[0] for r in rows]


def _masked_identity(row: dict[str, Any]) -> dict[str, Any]:
    shown = dict(row)
    shown["identifier_value"] = mask_identifier(row.get("identifier_type"), row.get("identifier_value"))
    return shown
