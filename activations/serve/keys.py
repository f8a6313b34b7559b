"""API keys of `attiva serve`: who may call which endpoint, see which fields, how often.

The keys file (serve_keys.yml at the root, or ATTIVA_SERVE_KEYS, or `--keys`) stores only the
sha256 of each key: a leaked file gives nobody access. `attiva serve --add-key NAME` prints a
new key once and appends its hash.

    cors_origins: ["https://shop.example.it"]
    keys:
      - name: storefront
        kind: browser              # server or browser (required; docs/security.md)
        sha256: 5e88...            # sha256 hex of the key
        endpoints: [profiles, audiences, events]
        fields: [first_name, recommendations, promotions]   # or ["*"]
        rate_limit: {per_second: 50, burst: 100}

Two kinds, because a key in a web page is public: anyone can read it and replay it with curl.
A server key may look anyone up and its events are trusted evidence of who is who. A browser
key may look up only the visitor itself (its device id, or a signed identity token), sees only
what a storefront shows, and its events never tie identifiers together unless signed.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from activations import settings
from activations.serve.store import PUBLIC_TRAITS

ENDPOINTS = ("profiles", "audiences", "events")
SECTIONS = ("audiences", "recommendations", "promotions")
ALL_FIELDS = (*PUBLIC_TRAITS, *SECTIONS)
# What a key embedded in a web page may see: what a storefront shows, never scores, consent or ids.
BROWSER_FIELDS = ("first_name", "recommendations", "promotions")
KINDS = ("server", "browser")
DEFAULT_RATE = {"per_second": 20.0, "burst": 40}
# Failed authentications allowed per client address: a burst, then one a second.
FAILURE_RATE = {"per_second": 1.0, "burst": 20}
RATE_BUCKETS = 100_000  # (key, address) buckets kept; the idlest are dropped beyond it

HEADER = """\
# API keys of `attiva serve`. Only each key's sha256 is stored here; the key itself is printed
# once by `attiva serve --add-key NAME [--fields ...] [--endpoints ...] [--browser]`.
# kind: server (on your servers: any lookup, trusted events) or browser (in a web page: only the
# visitor itself, first_name/recommendations/promotions, untrusted events); see docs/security.md.
# endpoints: profiles, audiences, events. fields: public traits and the sections audiences,
# recommendations, promotions ("*" for all). rate_limit: requests per second and burst, per key
# and client address. cors_origins: the web origins allowed to call the API from a browser.
"""


class KeysFileError(ValueError):
    """The keys file is malformed; the message names the entry and the field."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class ApiKey:
    name: str
    sha256: str
    endpoints: frozenset[str]
    fields: frozenset[str]
    per_second: float = DEFAULT_RATE["per_second"]
    burst: int = DEFAULT_RATE["burst"]
    kind: str = "browser"  # the safe reading: a key is public unless declared a server key

    @property
    def is_browser(self) -> bool:
        return self.kind != "server"

    def as_yaml(self) -> dict:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256, "endpoints": sorted(self.endpoints),
                "fields": ["*"] if self.fields == frozenset(ALL_FIELDS) else [f for f in ALL_FIELDS if f in self.fields],
                "rate_limit": {"per_second": self.per_second, "burst": self.burst}}


@dataclass
class KeysConfig:
    keys: list[ApiKey] = field(default_factory=list)
    cors_origins: list[str] = field(default_factory=list)

    def by_hash(self) -> dict[str, ApiKey]:
        return {k.sha256: k for k in self.keys}


def _names(value, allowed: tuple[str, ...], where: str) -> frozenset[str]:
    if value in ("*", ["*"]):
        return frozenset(allowed)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KeysFileError(f"{where}: expected a list of names or '*'")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise KeysFileError(f"{where}: unknown {', '.join(unknown)} (known: {', '.join(allowed)})")
    return frozenset(value)


def _check_browser_fields(kind: str, fields: frozenset[str], where: str) -> None:
    extra = sorted(fields - set(BROWSER_FIELDS)) if kind == "browser" else []
    if extra:
        raise KeysFileError(f"{where}: a browser key is public and may see only {', '.join(BROWSER_FIELDS)}, "
                            f"not {', '.join(extra)} (use a server key on your backend)")


def load_keys(path: Path | str | None = None) -> KeysConfig:
    """Read the keys file; a missing file means no keys (every call answers 401)."""
    path = Path(path or settings.serve_keys_path())
    if not path.exists():
        return KeysConfig()
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise KeysFileError(f"{path}: expected a mapping with `keys` and `cors_origins`")
    keys = []
    for i, entry in enumerate(raw.get("keys") or []):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict) or not entry.get("name"):
            raise KeysFileError(f"{where}: each key needs a name")
        where = f"{path}: key {entry['name']!r}"
        digest = str(entry.get("sha256", "")).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KeysFileError(f"{where}: sha256 must be the 64-hex sha256 of the key (never the key itself)")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise KeysFileError(f"{where}: kind must be server (kept on your servers: looks anyone up) or browser "
                                "(embedded in web pages: only the visitor itself); see docs/security.md")
        rate = entry.get("rate_limit") or {}
        fields = _names(entry.get("fields", list(BROWSER_FIELDS if kind == "browser" else ALL_FIELDS)), ALL_FIELDS,
                        f"{where} fields")
        _check_browser_fields(kind, fields, f"{where} fields")
        keys.append(ApiKey(entry["name"], digest, _names(entry.get("endpoints", "*"), ENDPOINTS, f"{where} endpoints"),
                           fields, float(rate.get("per_second", DEFAULT_RATE["per_second"])),
                           int(rate.get("burst", DEFAULT_RATE["burst"])), kind))
    origins = raw.get("cors_origins") or []
    if not isinstance(origins, list):
        raise KeysFileError(f"{path}: cors_origins must be a list of origins")
    return KeysConfig(keys, [str(o) for o in origins])


def new_key() -> str:
    """A fresh random key (shown once, never stored)."""
    return "atv_" + secrets.token_urlsafe(24)


def add_key(path: Path | str, name: str, *, fields: list[str] | None = None, endpoints: list[str] | None = None,
            browser: bool = False, per_second: float | None = None, burst: int | None = None) -> str:
    """Create a key, append its hash to the keys file and return the key itself (to print once)."""
    path = Path(path)
    config = load_keys(path)
    if any(k.name == name for k in config.keys):
        raise KeysFileError(f"{path}: a key named {name!r} exists already")
    chosen = _names(fields, ALL_FIELDS, "--fields") if fields else frozenset(BROWSER_FIELDS if browser else ALL_FIELDS)
    kind = "browser" if browser else "server"
    _check_browser_fields(kind, chosen, "--fields")
    key = new_key()
    config.keys.append(ApiKey(name, hash_key(key), _names(endpoints or "*", ENDPOINTS, "--endpoints"), chosen,
                              per_second or DEFAULT_RATE["per_second"], burst or DEFAULT_RATE["burst"], kind))
    body = {"cors_origins": config.cors_origins, "keys": [k.as_yaml() for k in config.keys]}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110))
    os.replace(tmp, path)
    return key


class RateLimiter:
    """Token buckets, one per (key, client address): `per_second` sustained, `burst` at once. Per address
    because a browser key is shared by every visitor of a page: one of them flooding it must not starve
    the others. At most `max_buckets` are kept; the least recently used go first (a full bucket again)."""

    def __init__(self, clock=time.monotonic, max_buckets: int = RATE_BUCKETS):
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._max = max_buckets
        self._lock = threading.Lock()

    def take(self, key: ApiKey, client: str = "") -> float:
        """0 when the request may go ahead, else the seconds to wait before the next one will."""
        return self.take_from((key.sha256, client), key.per_second, key.burst)

    def take_from(self, bucket: tuple[str, str], per_second: float, burst: int) -> float:
        """`take` for any bucket (failed authentications of an address use one of their own)."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.pop(bucket, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * per_second)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / per_second if per_second > 0 else math.inf
            self._buckets[bucket] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait
