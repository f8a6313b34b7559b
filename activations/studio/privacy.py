"""What a viewer may see of a person: no email, phone, name or birth date, only masked hints.

Masking happens on the data before a page is rendered, so a template cannot show what it never
receives.
"""

from __future__ import annotations

import re
from typing import Any

# Customer 360 fields that identify a person; a viewer sees them hidden.
PERSONAL_FIELDS = frozenset({"email", "phone", "first_name", "last_name", "birth_date", "birthday_day",
                             "company", "job_title", "city"})
# Identifier kinds that are personal data (the others are pseudonymous ids: contact, account, device).
PERSONAL_IDENTIFIERS = frozenset({"email", "phone"})
HIDDEN = "(hidden)"
EMAIL_IN_TEXT = re.compile(r"[^\s@<>(),;:'\"]+@[^\s@<>(),;:'\"]+")
# A date or time is kept as it is; any other run of 8 digits or more (spaces, dots, dashes between) is a phone.
PHONE_IN_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?)|(\+?\d(?:[ .-]?\d){7,})")


def mask_email(value: str | None) -> str | None:
    """`m•••@g•••.com`: enough to tell two addresses apart, not to write to one."""
    if not value:
        return value
    local, _, domain = value.partition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:1]}•••@{(host or domain)[:1]}•••{dot}{tld if host else ''}"


def mask_phone(value: str | None) -> str | None:
    """`•••67`: the last two digits only."""
    if not value:
        return value
    digits = "".join(c for c in value if c.isdigit())
    return f"•••{digits[-2:]}"


def mask_identifier(kind: str | None, value: str | None) -> str | None:
    """An identifier's value as a viewer sees it: emails and phones masked, pseudonymous ids as they are."""
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    return value


def masked_profile(fields: dict[str, Any]) -> dict[str, Any]:
    """A customer's 360 fields with the personal ones hidden (email and phone as masked hints)."""
    shown = {}
    for name, value in fields.items():
        if name == "email":
            shown[name] = mask_email(value)
        elif name == "phone":
            shown[name] = mask_phone(value)
        elif name in PERSONAL_FIELDS:
            shown[name] = HIDDEN if value is not None else None
        else:
            shown[name] = value
    return shown


def mask_text(value: str | None) -> str | None:
    """Free text (a destination's reason, a row key) with any email or phone number in it masked."""
    if not value:
        return value
    value = EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group()), value)
    return PHONE_IN_TEXT.sub(lambda m: m.group(1) or mask_phone(m.group(2)), value)
