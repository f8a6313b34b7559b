"""Identifier values as dbt stores them in customer_identifiers, one value at a time, in microseconds.

The shared rules (`activations.destinations.identifiers`) are polars expressions built for columns:
one phone through them costs milliseconds, which at a thousand lookups a second would stall the API.
`phone_e164` is the same rules in plain Python for the characters a phone is typed with (a test checks
it against the polars rules on many spellings); anything else goes through the polars rules, cached.
"""

from __future__ import annotations

import functools
import re
import string

from activations.destinations.identifiers import (
    DEFAULT_COUNTRY_CODE,
    KEEP_TRUNK_ZERO,
    MIN_SUBSCRIBER_DIGITS,
    PLACEHOLDER_SUBSCRIBERS,
)

# The longest identifier value looked up or accepted (an email may be 320 characters): longer ones
# are refused before they reach the caches below.
MAX_IDENTIFIER = 320

# Python and polars agree on what these characters are (strip, \s); beyond them they may not.
_PLAIN = frozenset(string.printable)
_SHAPE = re.compile(r"\+?[0-9\s().\-/]+")
_NOT_DIGITS = re.compile(r"[^0-9]+")
_PLACEHOLDERS = frozenset(PLACEHOLDER_SUBSCRIBERS)


def phone_e164(value: str, cc: str = DEFAULT_COUNTRY_CODE) -> str | None:
    """`+393331234567`, or None for junk and placeholders: `normalize_phone`'s answer for one value."""
    if not _PLAIN.issuperset(value):
        return _phone_polars(value, cc)
    raw = value.strip()
    if not raw:
        return None
    raw = raw.replace("(0)", "")  # "+44 (0)20 ..." writes the trunk 0 it must drop
    digits = _NOT_DIGITS.sub("", raw)
    plus = raw.startswith("+")
    double_zero = not plus and digits.startswith("00")
    national = digits if cc in KEEP_TRUNK_ZERO else digits.removeprefix("0")
    full = digits if plus else digits[2:] if double_zero else cc + national
    if not plus and not double_zero:
        subscriber = national
    else:
        subscriber = full[len(cc):] if full.startswith(cc) else full[1:]
    if (_SHAPE.fullmatch(raw) and 8 <= len(full) <= 15 and not full.startswith("0")
            and len(subscriber) >= MIN_SUBSCRIBER_DIGITS and len(set(subscriber)) > 1
            and subscriber not in _PLACEHOLDERS):
        return "+" + full
    return None


@functools.lru_cache(maxsize=4096)
def _phone_polars(value: str, cc: str) -> str | None:
    import polars as pl

    from activations.destinations.identifiers import normalize_phone

    return pl.select(normalize_phone(pl.lit(value, dtype=pl.String), default_country_code=cc)).item()


@functools.lru_cache(maxsize=65_536)
def normalize_identifier(id_type: str, value: str) -> str | None:
    """The value as dbt stores it in customer_identifiers (callers cap it at MAX_IDENTIFIER first).

    Emails are trimmed and lower-cased: an address dbt would null (bad syntax, a placeholder) is
    never in customer_identifiers, so it is simply not found, without paying polars' ~2 ms a call.
    Phones follow the shared E.164 rules, in plain Python (`phone_e164`).
    """
    value = value.strip()
    if id_type == "email":
        return value.lower() or None
    if id_type == "phone":
        return phone_e164(value)
    return value or None
