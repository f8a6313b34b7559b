"""API keys of `attiva serve`: who may call which endpoint, see which fields, how often.

The keys file (serve_keys.yml at the root, or ATTIVA_SERVE_KEYS, or `--keys`) stores only the
sha256 of each key: a leaked file gives nobody access. `attiva serve --add-key NAME` prints a
new key once and appends its hash.

    cors_origins: ["https://shop.example.it"]
    keys:
      - name: storefront
        sha256: 5e88...            # sha256 hex of the key
        endpoints: [profiles, audiences, events]
        fields: [first_name, city, audiences, recommendations, promotions]   # or ["*"]
        rate_limit: {per_second: 50, burst: 100}
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from activations import settings
from activations.serve.store import PUBLIC_TRAITS

ENDPOINTS = ("profiles", "audiences", "events")
SECTIONS = ("audiences", "recommendations", "promotions")
ALL_FIELDS = (*PUBLIC_TRAITS, *SECTIONS)
# What a key embedded in a web page may see: everything public except the contact details.
BROWSER_FIELDS = tuple(f for f in ALL_FIELDS if f not in {"email", "phone"})
DEFAULT_RATE = {"per_second": 20.0, "burst": 40}

HEADER = """\
# API keys of `attiva serve`. Only each key's sha256 is stored here; the key itself is printed
# once by `attiva serve --add-key NAME [--fields ...] [--endpoints ...] [--browser]`.
# endpoints: profiles, audiences, events. fields: public traits and the sections audiences,
# recommendations, promotions ("*" for all). rate_limit: requests per second and burst, per key.
# cors_origins: the web origins allowed to call the API from a browser.
"""


class KeysFileError(ValueError):
    """The keys file is malformed; the message names the entry and the field."""


def keys_path() -> Path:
    """The keys file: ATTIVA_SERVE_KEYS, default serve_keys.yml at the project root."""
    return Path(os.environ.get("ATTIVA_SERVE_KEYS", settings.project_root() / "serve_keys.yml"))


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

    def as_yaml(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "endpoints": sorted(self.endpoints),
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


def load_keys(path: Path | str | None = None) -> KeysConfig:
    """Read the keys file; a missing file means no keys (every call answers 401)."""
    path = Path(path or keys_path())
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
        rate = entry.get("rate_limit") or {}
        keys.append(ApiKey(entry["name"], digest, _names(entry.get("endpoints", "*"), ENDPOINTS, f"{where} endpoints"),
                           _names(entry.get("fields", list(BROWSER_FIELDS)), ALL_FIELDS, f"{where} fields"),
                           float(rate.get("per_second", DEFAULT_RATE["per_second"])),
                           int(rate.get("burst", DEFAULT_RATE["burst"]))))
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
    if browser:
        chosen -= {"email", "phone"}
    key = new_key()
    config.keys.append(ApiKey(name, hash_key(key), _names(endpoints or "*", ENDPOINTS, "--endpoints"), chosen,
                              per_second or DEFAULT_RATE["per_second"], burst or DEFAULT_RATE["burst"]))
    body = {"cors_origins": config.cors_origins, "keys": [k.as_yaml() for k in config.keys]}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110))
    os.replace(tmp, path)
    return key


class RateLimiter:
    """A token bucket per key: `per_second` sustained, `burst` at once."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: ApiKey) -> float:
        """0 when the request may go ahead, else the seconds to wait before the next one will."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key.name, (float(key.burst), now))
            tokens = min(float(key.burst), tokens + (now - at) * key.per_second)
            if tokens >= 1:
                self._buckets[key.name] = (tokens - 1, now)
                return 0.0
            self._buckets[key.name] = (tokens, now)
            return (1 - tokens) / key.per_second if key.per_second > 0 else math.inf
