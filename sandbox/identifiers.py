"""How the sandbox tells a well-formed identifier from a bad one, as the platforms do."""

from __future__ import annotations

import hashlib
import re

# Syntax only: platforms also refuse "fake" domains, which would make synthetic demo data fail.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SHA256_HEX_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def is_email(value: object) -> bool:
    return isinstance(value, str) and _EMAIL.fullmatch(value.strip()) is not None


def is_sha256_hex(value: object) -> bool:
    """64 lowercase hex characters, what Meta requires of a hashed key."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def is_sha256_hex_any_case(value: object) -> bool:
    return isinstance(value, str) and _SHA256_HEX_ANY_CASE.fullmatch(value) is not None


def is_hex(value: object) -> bool:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()
