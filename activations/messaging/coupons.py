"""Unique, single-use coupon codes, recorded in the warehouse (`activation.coupons`).

A coupon belongs to one message (campaign, trigger_key, step): issuing it again, as a
resend after a crash does, returns the code already recorded, so a customer never holds
two codes for one message. Portable SQL only (no constraints, no upsert syntax), like
the engine's own state tables.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

# No 0/O and no 1/I: codes are read aloud at a till and typed from a phone.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
GROUPS, GROUP_SIZE = 2, 4  # 8 characters of 5 bits: 40 random bits a code
MAX_TRIES = 10
_PREFIX = re.compile(r"[A-Z0-9]{0,12}")
COLUMNS = ("code", "customer_id", "campaign", "trigger_key", "step", "discount_pct", "issued_at", "expires_at",
           "redeemed_at")
DDL = """create table if not exists activation.coupons (
    code string, customer_id string, campaign string, trigger_key string, step integer, discount_pct double,
    issued_at timestamp, expires_at timestamp, redeemed_at timestamp)"""


def new_code(prefix: str) -> str:
    """A cryptographically random code such as `BDAY-7KQ2-XM9P` (empty prefix: `7KQ2-XM9P`)."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"a coupon prefix is up to 12 upper-case letters and digits, not {prefix!r}")
    groups = ["".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(GROUPS)]
    return "-".join([prefix, *groups] if prefix else groups)


def prefix_for(campaign: str) -> str:
    """The default code prefix of a campaign: its letters and digits, upper-cased, at most 8 (`win_back` -> `WINBACK`)."""
    return re.sub(r"[^A-Z0-9]", "", campaign.upper())[:8]


def ensure_coupons(con) -> None:
    """Create schema `activation` and table `activation.coupons` if they are missing."""
    con.execute("create schema if not exists activation")
    con.execute(DDL)


def _naive_utc(value: datetime) -> datetime:
    # The columns are `timestamp` (no zone) holding UTC; an aware value would be shifted by the session zone.
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _as_dict(row: tuple) -> dict[str, Any]:
    coupon = dict(zip(COLUMNS, row, strict=True))
    for key in ("issued_at", "expires_at", "redeemed_at"):
        if coupon[key] is not None:
            coupon[key] = coupon[key].replace(tzinfo=UTC)
    return coupon


def _for_message(con, campaign: str, trigger_key: str, step: int) -> dict[str, Any] | None:
    # Ordered so that, should two writers on another warehouse both insert, every caller picks the same code.
    rows = con.execute(
        f"select {', '.join(COLUMNS)} from activation.coupons where campaign = ? and trigger_key = ? and step = ? "
        "order by issued_at, code", [campaign, trigger_key, step]).fetchall()
    return _as_dict(rows[0]) if rows else None


def issue(con, customer_id: str, campaign: str, trigger_key: str, step: int, discount_pct: float,
          issued_at: datetime, valid_days: int, *, prefix: str | None = None) -> dict[str, Any]:
    """The coupon of one message (campaign, trigger_key, step): the recorded one, else a new unique code.

    Returns every column as a dict (timestamps in UTC); a template's `coupon` is this dict.
    """
    if existing := _for_message(con, campaign, trigger_key, step):
        return existing
    prefix = prefix_for(campaign) if prefix is None else prefix
    issued = _naive_utc(issued_at)
    for _ in range(MAX_TRIES):
        code = new_code(prefix)
        # One statement that inserts only if the message has no coupon yet and the code is unused.
        con.execute(
            f"insert into activation.coupons ({', '.join(COLUMNS)}) "
            "select ?, ?, ?, ?, ?, ?, ?, ?, null "
            "where not exists (select 1 from activation.coupons where campaign = ? and trigger_key = ? and step = ?) "
            "and not exists (select 1 from activation.coupons where code = ?)",
            [code, customer_id, campaign, trigger_key, step, float(discount_pct), issued,
             issued + timedelta(days=valid_days), campaign, trigger_key, step, code])
        if coupon := _for_message(con, campaign, trigger_key, step):
            return coupon
        # Nothing recorded for the message: the code was taken. Draw another.
    raise RuntimeError(f"could not draw an unused coupon code in {MAX_TRIES} tries (prefix {prefix!r})")


def redeem(con, code: str, at: datetime) -> bool:
    """Mark `code` used at `at`: True the first time while it is valid; False if unknown, used or expired."""
    at = _naive_utc(at)
    # The condition and the write are one statement: two redemptions of one code cannot both succeed.
    # DuckDB answers an update with the number of rows it changed.
    result = con.execute(
        "update activation.coupons set redeemed_at = ? where code = ? and redeemed_at is null and expires_at >= ?",
        [at, code.strip().upper(), at]).fetchone()
    return bool(result and result[0])
