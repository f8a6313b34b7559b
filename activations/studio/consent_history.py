"""A customer's consent over time: every consent record given under one of their identifiers, the
unsubscribes and complaints that revoke email consent, and the suppression lists that hold them.

The records are those int_customers__consent reads (staging.stg_consent__records and the email
engagement's unsubscribes and complaints), joined to the customer through the same identity nodes,
so the history ends in the consent the profile shows. The suppression lists keep only hashes: an
entry is found by hashing the customer's own emails and phones as the send step does.
"""

from __future__ import annotations

from typing import Any

from activations import warehouse
from activations.messaging.feedback import email_sha256, phone_sha256
from activations.studio.privacy import mask_identifier

# What int_customers__consent counts as a revocation of email consent besides a consent record.
REVOKING_ENGAGEMENT = ("unsubscribe", "complaint")


def consent_history(con, customer_id: str, personal: bool) -> list[dict[str, Any]]:
    """The customer's consent records and suppressions, newest first: channel, status, when, source and
    the identifier it was given under (masked unless `personal`)."""
    identifiers = _identifiers(con, customer_id)
    found = _records(con, identifiers) + _suppressions(con, identifiers)
    found.sort(key=lambda r: (r["channel"], r["record_id"] or ""))
    found.sort(key=lambda r: (r["recorded_at"] is not None, r["recorded_at"]), reverse=True)  # stable: ties by channel
    for row in found:
        row["given_under"] = (row["kind"], row["value"] if personal else mask_identifier(row["kind"], row["value"]))
    return found


def _identifiers(con, customer_id: str) -> list[tuple[str, str]]:
    if not warehouse.has_table(con, "marts", "customer_identifiers"):
        return []
    return con.execute("select distinct identifier_type, identifier_value from marts.customer_identifiers "
                       "where customer_id = ? and identifier_type in ('email', 'phone', 'shop_customer_id')",
                       [customer_id]).fetchall()


def _records(con, identifiers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    parts = []
    if warehouse.has_table(con, "staging", "stg_consent__records"):
        parts.append("select consent_id as record_id, email, phone, shop_customer_id, channel, status, recorded_at, "
                     "consent_source as source from staging.stg_consent__records")
    if warehouse.has_table(con, "staging", "stg_email__engagement"):
        kinds = ", ".join(f"'{k}'" for k in REVOKING_ENGAGEMENT)
        # Named as the records' columns: without stg_consent__records this branch names the union's.
        parts.append("select engagement_id as record_id, email, cast(null as varchar) as phone, "
                     "cast(null as varchar) as shop_customer_id, 'email' as channel, 'revoked' as status, "
                     "occurred_at as recorded_at, 'email ' || event_type as source "
                     f"from staging.stg_email__engagement where event_type in ({kinds})")
    if not parts or not identifiers:
        return []
    # A record exported again in a later file is in staging once per file: shown once.
    rows = con.execute(f"""
        with records as ({" union all ".join(parts)}),
        ids(kind, value) as (select * from (values {", ".join("(?, ?)" for _ in identifiers)}))
        select distinct r.record_id, r.channel, r.status, r.recorded_at, r.source, ids.kind, ids.value
        from records as r
        join ids on (ids.kind = 'email' and r.email = ids.value) or (ids.kind = 'phone' and r.phone = ids.value)
                 or (ids.kind = 'shop_customer_id' and r.shop_customer_id = ids.value)""",
                       [v for pair in identifiers for v in pair]).fetchall()
    columns = ("record_id", "channel", "status", "recorded_at", "source", "kind", "value")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _suppressions(con, identifiers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    found = []
    for kind, table, column, digest in (("email", "suppression_list", "email_sha256", email_sha256),
                                        ("phone", "sms_suppression_list", "phone_sha256", phone_sha256)):
        values = {digest(value): value for k, value in identifiers if k == kind}
        if not values or not warehouse.has_table(con, "activation", table):
            continue
        rows = con.execute(f"select {column}, reason, added_at from activation.{table} where {column} in "
                           f"({', '.join('?' for _ in values)})", list(values)).fetchall()
        found += [{"record_id": None, "channel": "email" if kind == "email" else "sms", "status": "suppressed",
                   "recorded_at": added_at, "source": f"{table.replace('_', ' ')}: {reason}", "kind": kind,
                   "value": values[hashed]} for hashed, reason, added_at in rows]
    return found
