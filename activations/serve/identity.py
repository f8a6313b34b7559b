"""Signed identity tokens: how a shop's own backend vouches for who a browser visitor is.

A browser key is public, so a web page cannot prove a visitor is `paola@example.it` by saying so.
The shop's backend, which knows who is logged in, signs a short-lived token with a secret it
shares with Attiva (ATTIVA_IDENTITY_SECRET), as Intercom's identity verification does:

    payload = f"email:{email}:{expires_unix}"
    token = payload + ":" + hmac.new(secret, payload, hashlib.sha256).hexdigest()

The page sends it in the `X-Attiva-Identity` header; `GET /v1/profiles/me` answers for that
identity, and events sent with it are trusted for it. Tokens are compared in constant time and
refused once expired or when they claim to live longer than MAX_LIFETIME.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from activations import settings

HEADER = "x-attiva-identity"
TYPES = ("email", "phone", "shop_customer_id")  # what a shop backend knows of its logged-in customer
ME = "me"  # /v1/profiles/me, /v1/messages/me: the visitor its identity token names
MAX_LIFETIME = 24 * 3600  # seconds: a token is a session's, not a permanent credential
MAX_TOKEN = 600  # characters: an identifier (at most 320) and the rest


def identity_secret() -> str | None:
    """The per-deployment signing secret, or None: then no token is accepted."""
    return settings.identity_secret()


def _signature(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def sign_identity(id_type: str, value: str, secret: str, lifetime: int = 3600, now: float | None = None) -> str:
    """A token for `id_type:value` valid `lifetime` seconds: what the shop's backend makes (see docs/security.md)."""
    if id_type not in TYPES:
        raise ValueError(f"an identity token names one of {', '.join(TYPES)}")
    payload = f"{id_type}:{value}:{int((time.time() if now is None else now) + lifetime)}"
    return f"{payload}:{_signature(payload, secret)}"


def verify_identity(token: str, secret: str | None, now: float | None = None) -> tuple[str, str] | None:
    """(id_type, value) when the token is genuine and not expired, else None."""
    if not secret or not token or len(token) > MAX_TOKEN:
        return None
    payload, _, signature = token.strip().rpartition(":")
    identity, _, expires = payload.rpartition(":")
    id_type, _, value = identity.partition(":")
    try:
        expected = _signature(payload, secret)
    except UnicodeEncodeError:
        return None
    if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
        return None
    if id_type not in TYPES or not value or not expires.isdigit():
        return None
    now = time.time() if now is None else now
    if not now < int(expires) <= now + MAX_LIFETIME:
        return None
    return id_type, value
