"""Reading credentials the way each vendor sends them, and comparing them in constant time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from starlette.requests import Request


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(request: Request, schemes: tuple[str, ...] = ("bearer",)) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (or another listed scheme), else None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in schemes or not token.strip():
        return None
    return token.strip()


def basic_password(request: Request) -> str | None:
    """The password of HTTP Basic auth (Mailchimp: any user name, the API key as password)."""
    found = basic_credentials(request)
    return found[1] if found else None


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``, the webhook's signature header value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(header.strip().encode(), signature(secret, body).encode())


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user name, password) of HTTP Basic auth (Twilio: the account SID and the auth token), else None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def twilio_signature(token: str, url: str, params) -> str:
    """``X-Twilio-Signature``: base64 HMAC-SHA1 (auth token) of the URL and the sorted POST parameters."""
    payload = url + "".join(f"{k}{v}" for k, v in sorted(set(params)))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()
