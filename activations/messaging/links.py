"""Links inside a message: the signed unsubscribe link and UTM parameters for attribution.

The unsubscribe token carries the customer, the campaign and an expiry with an HMAC-SHA256
over all three, so the unsubscribe endpoint (`attiva serve`, /unsubscribe) verifies it without
a database lookup and nobody can forge one for someone else. The secret is never logged nor
put in an error. The public development secret signs only links that point at this machine:
anywhere else, ATTIVA_UNSUBSCRIBE_SECRET must be set or messaging refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from activations import settings

# Only for a laptop: production sets ATTIVA_UNSUBSCRIBE_SECRET (see .env.example).
DEV_UNSUBSCRIBE_SECRET = "attiva-dev-unsubscribe-secret"
TOKEN_VERSION = "v2"
LEGACY_VERSION = "v1"  # no expiry: still honoured, so links already in inboxes keep unsubscribing
TOKEN_LIFETIME = 90 * 86400  # seconds a link works: well past the 30 days the law asks links to work
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")


class MissingUnsubscribeSecret(RuntimeError):
    """ATTIVA_UNSUBSCRIBE_SECRET is unset while links point beyond this machine."""


def unsubscribe_secret() -> str:
    """The signing secret: ATTIVA_UNSUBSCRIBE_SECRET; the public development value only while links point
    at this machine (the sandbox); otherwise MissingUnsubscribeSecret, with what to do."""
    secret = settings.unsubscribe_secret()
    if secret:
        return secret
    base_url = unsubscribe_base_url()
    if urlsplit(base_url).hostname in LOOPBACK_HOSTS:
        return DEV_UNSUBSCRIBE_SECRET
    raise MissingUnsubscribeSecret(
        f"ATTIVA_UNSUBSCRIBE_SECRET is not set: unsubscribe links to {base_url} would be signed with the public "
        "development value, so anyone could forge them. Set it to a long random value (openssl rand -hex 32), "
        "the same for messaging and `attiva serve`.")


def unsubscribe_base_url() -> str:
    """Where unsubscribe links point: ATTIVA_UNSUBSCRIBE_BASE_URL, else `attiva serve` on this machine."""
    return settings.unsubscribe_base_url() or f"http://127.0.0.1:{settings.serve_port()}/unsubscribe"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(body: str, secret: str) -> str:
    if not secret:
        raise ValueError("the unsubscribe secret is empty")
    return _b64(hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest())


def unsubscribe_token(customer_id: str, campaign: str, secret: str, now: float | None = None) -> str:
    """A URL-safe token `v2.<customer>.<campaign>.<expires>.<hmac>` that only the holder of `secret` can
    make, working TOKEN_LIFETIME seconds from `now`."""
    if not customer_id or not campaign:
        raise ValueError("an unsubscribe token needs a customer_id and a campaign")
    expires = int((time.time() if now is None else now) + TOKEN_LIFETIME)
    # base64url has no '.', so the signed body cannot be read two ways.
    body = f"{TOKEN_VERSION}.{_b64(customer_id.encode())}.{_b64(campaign.encode())}.{expires}"
    return f"{body}.{_signature(body, secret)}"


def verify_unsubscribe(token: str, secret: str, now: float | None = None) -> tuple[str, str] | None:
    """(customer_id, campaign) when the token is genuine and not expired, else None (compared in constant time)."""
    if not isinstance(token, str):
        return None
    parts = token.strip().split(".")
    if not (parts[0] == TOKEN_VERSION and len(parts) == 5 or parts[0] == LEGACY_VERSION and len(parts) == 4):
        return None
    body = ".".join(parts[:-1])
    try:
        expected = _signature(body, secret)
    except (UnicodeEncodeError, ValueError):
        return None
    if not hmac.compare_digest(expected.encode(), parts[-1].encode("ascii", "replace")):
        return None
    if parts[0] == TOKEN_VERSION and not (parts[3].isdigit() and (time.time() if now is None else now) < int(parts[3])):
        return None
    try:
        return _unb64(parts[1]).decode(), _unb64(parts[2]).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def unsubscribe_url(base_url: str, customer_id: str, campaign: str, secret: str) -> str:
    """The one-click unsubscribe link: `base_url?token=...`, keeping any query `base_url` has."""
    return _with_params(base_url, {"token": unsubscribe_token(customer_id, campaign, secret)})


@lru_cache(maxsize=16_384)  # the same few product and page links recur in every message of a campaign
def add_utm(url: str, *, source: str, medium: str, campaign: str, content: str) -> str:
    """`url` with utm_source/medium/campaign/content set (ours win), other query params and fragment kept.

    Only http(s) links are tracked: anything else (`javascript:`, `data:`) raises ValueError.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"only absolute http(s) links can be tracked, not {url[:80]!r}")
    return _with_params(url, dict(zip(UTM_KEYS, (source, medium, campaign, content), strict=True)))
