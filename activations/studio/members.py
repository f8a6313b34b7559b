"""Who is in an audience: a sample of its members (personal data only for roles that may see it,
optionally only those with a given consent) and its overlap with every other audience."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activations.studio.audiences import audience_tables, literal, relation
from activations.studio.privacy import masked_profile

SAMPLE_SIZE = 20
# The consent and marketability flags an audience may carry (attiva.audience_contact_columns()).
CONSENTS = ("email_marketable", "consent_email", "consent_sms", "consent_ads", "consent_profiling")
# What the sample shows of each member when the audience has the column.
SHOWN = ("customer_id", "email", "phone", "first_name", "last_name", "city")


@dataclass(frozen=True)
class Sample:
    columns: list[str]  # shown columns, then consents, as the audience has them
    rows: list[dict[str, Any]]
    consents: list[str]  # the consent columns the audience has: the filter's choices
    only: str | None  # the consent every sampled member has, if one was asked for


@dataclass(frozen=True)
class Overlap:
    other: str
    other_size: int
    shared: int


def sample(con, name: str, personal: bool, only: str | None = None, size: int = SAMPLE_SIZE) -> Sample:
    """Up to `size` members, the same ones on every load (ordered by customer id); with `only`, members
    for whom that consent column is true. Masked (privacy.masked_profile) unless `personal`."""
    have = _columns(con, name)
    consents = [c for c in CONSENTS if c in have]
    if only not in consents:
        only = None
    columns = [c for c in SHOWN if c in have] + consents
    if not columns:
        return Sample([], [], consents, only)
    order = "customer_id" if "customer_id" in have else columns[0]
    where = f"where {only} = true" if only else ""
    cursor = con.execute(f"select {', '.join(columns)} from {relation(name)} {where} order by {order} limit ?",
                         [size])
    rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return Sample(columns, rows if personal else [masked_profile(r) for r in rows], consents, only)


def overlaps(con, name: str) -> list[Overlap]:
    """Every other audience with a customer_id, its size and how many customers it shares with `name`,
    most shared first; one query."""
    others = [n for n in audience_tables(con, with_column="customer_id") if n != name]
    if not others or "customer_id" not in _columns(con, name):
        return []
    members = f"(select distinct customer_id from {relation(name)} where customer_id is not null)"
    rows = con.execute(" union all ".join(
        f"""select {literal(other)}, (select count(distinct customer_id) from {relation(other)}),
                   (select count(*) from {members} as m
                    where m.customer_id in (select customer_id from {relation(other)}))"""
        for other in others)).fetchall()
    return sorted((Overlap(*row) for row in rows), key=lambda o: (-o.shared, o.other))


def _columns(con, name: str) -> set[str]:
    return {r[0] for r in con.execute("select column_name from information_schema.columns "
                                      "where table_schema = 'audiences' and table_name = ?", [name]).fetchall()}
