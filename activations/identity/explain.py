"""`attiva identity CUSTOMER`: which records make up a customer, which edges joined them and
which identifiers were set aside (shared or placeholder), read from
marts.customer_identity_explained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COLUMNS = ("record_type", "record_id", "role", "identifier_type", "identifier_value", "reason", "people",
           "max_people", "source", "first_seen_at", "last_seen_at")
IDENTIFIER_TYPES = ("email", "phone", "crm_contact_id", "shop_customer_id", "device_id", "guest_order_id",
                    "meta_lead_id", "social_user_id")


@dataclass(frozen=True)
class Explanation:
    """One customer's rows of customer_identity_explained, each a dict of COLUMNS."""

    customer_id: str
    rows: list[dict[str, Any]]


def find_customers(con, who: str) -> list[str]:
    """The customer ids `who` names: a customer id, an identifier value (an email, phone, CRM
    contact id, shop account id, device id), or `type:value`. Emails match case-insensitively;
    phones by their digits' E.164 form as staging writes it."""
    kind, _, value = who.partition(":")
    if kind in IDENTIFIER_TYPES and value:
        candidates, kinds = [value.strip()], [kind]
    else:
        candidates, kinds = _spellings(who), list(IDENTIFIER_TYPES)
    marks, kind_marks = ", ".join("?" for _ in candidates), ", ".join("?" for _ in kinds)
    # A union, not `or`: each side's filter then goes into its scan (5x faster on 4M identifiers).
    rows = con.execute(
        "select customer_id from marts.customer_identifiers where customer_id = ? union "
        "select customer_id from marts.customer_identifiers "
        f"where identifier_value in ({marks}) and identifier_type in ({kind_marks}) "
        "order by customer_id", [who.strip(), *candidates, *kinds]).fetchall()
    return [r[0] for r in rows]


def _spellings(who: str) -> list[str]:
    """`who` as typed, trimmed, lower-case (emails) and as an E.164 phone (+39 by default)."""
    text = who.strip()
    found = [text, text.lower()]
    digits = "".join(c for c in text if c.isdigit())
    if digits and "@" not in text:
        if text.startswith("+"):
            found.append("+" + digits)
        elif digits.startswith("00"):
            found.append("+" + digits[2:])
        else:
            found.append("+39" + digits)
    return list(dict.fromkeys(found))


def explain(con, customer_id: str) -> Explanation:
    """Every row of customer_identity_explained for one customer: records, then links, then set aside."""
    rows = con.execute(
        f"select {', '.join(COLUMNS)} from marts.customer_identity_explained where customer_id = ? "
        "order by case role when 'record' then 0 when 'link' then 1 else 2 end, record_type, record_id, "
        "identifier_type, identifier_value, source", [customer_id]).fetchall()
    return Explanation(customer_id, [dict(zip(COLUMNS, r, strict=True)) for r in rows])


def _day(value) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else "?"


def _seen(row: dict[str, Any]) -> str:
    first, last = _day(row["first_seen_at"]), _day(row["last_seen_at"])
    return f"{row['source']}, {first}" + (f" to {last}" if last != first else "")


def _set_aside_reason(row: dict[str, Any]) -> str:
    if row["reason"] == "shared":
        return (f"shared: links {row['people']} different people, more than the {row['max_people']} "
                f"allowed for a {row['identifier_type']}; kept as an identifier, merges no one")
    return f"{row['reason']} value, nulled in staging: identifies no one"


def explanation_text(who: str, explanations: list[Explanation]) -> str:
    """The explanations as the CLI prints them."""
    if not explanations:
        return f"no customer has {who!r} (a customer id, or an email, phone, contact, account or device id)"
    out: list[str] = []
    if len(explanations) > 1:
        out.append(f"{who!r} belongs to {len(explanations)} customers (it is shared):")
    for found in explanations:
        records = [r for r in found.rows if r["role"] == "record"]
        links = [r for r in found.rows if r["role"] == "link"]
        aside = [r for r in found.rows if r["role"] == "set_aside"]
        out.append(f"customer {found.customer_id}")
        out.append(f"  records ({len(records)}):")
        out += [f"    {r['record_type']} {r['record_id']}  ({_seen(r)})" for r in records]
        out.append(f"  joined by ({len(links)}):")
        out += [f"    {r['record_type']} {r['record_id']} -> {r['identifier_type']} {r['identifier_value']}"
                f"  ({_seen(r)})" for r in links]
        out.append(f"  set aside ({len(aside)}):")
        out += [f"    {r['record_type']} {r['record_id']} -> {r['identifier_type']} {r['identifier_value'] or '(value not kept)'}"
                f": {_set_aside_reason(r)}  ({_seen(r)})" for r in aside]
    return "\n".join(out)
