"""`X-Twilio-Signature`: how Twilio signs what it posts to us (status callbacks, inbound messages).

Base64 of HMAC-SHA1, keyed by the account's auth token, over the full URL Twilio called (scheme, host,
path and query string) followed by every POST parameter, sorted by name (then value), as name and value
with no separators. https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Twilio-Signature"


def signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The header value Twilio sends for a POST of `params` to `url`."""
    # As Twilio's own libraries: by name, then by value, a repeated name and value counted once.
    payload = url + "".join(f"{name}{value}" for name, value in sorted(set(params)))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def signature_ok(token: str, url: str, params: Iterable[tuple[str, str]], header: str | None) -> bool:
    """Whether `header` is Twilio's signature of this request; compared in constant time."""
    if not header or not token:
        return False
    return hmac.compare_digest(header.strip().encode(), signature(token, url, params).encode())
