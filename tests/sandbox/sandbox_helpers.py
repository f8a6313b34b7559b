"""Helpers for the sandbox tests: credentials the vendors' way, signed webhook posts, state reads."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests

from sandbox import DESTINATION_TYPES

TOKENS = {t: f"test-{t}-secret" for t in DESTINATION_TYPES}


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sign(body: bytes, secret: str = TOKENS["webhook"]) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def auth(destination: str, token: str | None = None) -> dict[str, Any]:
    """``requests`` keyword arguments carrying a destination's credential the vendor's way."""
    token = TOKENS[destination] if token is None else token
    if destination == "mailchimp":
        return {"auth": ("anystring", token)}
    if destination == "brevo":
        return {"headers": {"api-key": token}}
    return {"headers": {"Authorization": f"Bearer {token}"}}


def post_webhook(url: str, rows: list[Any], path: str = "hooks/test", **kwargs: Any) -> requests.Response:
    body = json.dumps({"rows": rows}).encode()
    headers = {"Content-Type": "application/json", "X-Attiva-Signature": sign(body), **kwargs.pop("headers", {})}
    return requests.post(
        f"{url}/webhook/{path}", data=body, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs
    )


def state(url: str, destination: str | None = None) -> dict[str, Any]:
    path = "/_sandbox/state" + (f"/{destination}" if destination else "")
    answer = requests.get(url + path, timeout=30)
    answer.raise_for_status()
    return answer.json()


def set_faults(url: str, **spec: Any) -> dict[str, Any]:
    answer = requests.post(f"{url}/_sandbox/faults", json=spec, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()
