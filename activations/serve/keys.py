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
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from activations import settings
from activations.config.errors import ConfigError, first_problem
from activations.serve.store import PUBLIC_TRAITS

ENDPOINTS = ("profiles", "audiences", "events", "messages")
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
# yaml-language-server: $schema=schemas/serve_keys.schema.json
# API keys of `attiva serve`. Only each key's sha256 is stored here; the key itself is printed
# once by `attiva serve --add-key NAME [--fields ...] [--endpoints ...] [--browser]`.
# kind: server (on your servers: any lookup, trusted events) or browser (in a web page: only the
# visitor itself, first_name/recommendations/promotions, untrusted events); see docs/security.md.
# endpoints: profiles, audiences, events, messages. fields: public traits and the sections audiences,
# recommendations, promotions ("*" for all). rate_limit: requests per second and burst, per key
# and client address. cors_origins: the web origins allowed to call the API from a browser.
"""


class KeysFileError(ConfigError):
    """The keys file is malformed; the message names the file, the key and the field."""

    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(reason, file=file, entry=key, entry_kind="key", field=field)


def _names_schema(allowed: tuple[str, ...]) -> dict:
    return {"anyOf": [{"const": "*"}, {"type": "array", "items": {"enum": [*allowed, "*"]}}]}


class RateEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    per_second: float = Field(DEFAULT_RATE["per_second"], gt=0, description="requests per second, sustained")
    burst: int = Field(DEFAULT_RATE["burst"], gt=0, description="requests at once")


class KeyEntry(BaseModel):
    """One API key of `attiva serve`: only its sha256 is stored."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1)
    kind: Literal["server", "browser"] = Field(
        description="server (kept on your servers: looks anyone up) or browser (embedded in web pages: only the "
                    "visitor itself); see docs/security.md")
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$",
                        description="the 64-hex sha256 of the key (never the key itself)")
    endpoints: Annotated[Any, WithJsonSchema(_names_schema(ENDPOINTS))] = "*"
    fields: Annotated[Any, WithJsonSchema(_names_schema(ALL_FIELDS))] = None
    rate_limit: RateEntry = Field(default_factory=RateEntry)


class KeysFile(BaseModel):
    """serve_keys.yml: who may call `attiva serve`, see what, how often."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cors_origins: list[str] = Field(default_factory=list, description="web origins allowed to call from a browser")
    keys: list[KeyEntry] = Field(default_factory=list)


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


def _names(value, allowed: tuple[str, ...], fail) -> frozenset[str]:
    if value in ("*", ["*"]):
        return frozenset(allowed)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("expected a list of names or '*'")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise fail(f"unknown {', '.join(unknown)} (known: {', '.join(allowed)})")
    return frozenset(value)


def _check_browser_fields(kind: str, fields: frozenset[str], fail) -> None:
    extra = sorted(fields - set(BROWSER_FIELDS)) if kind == "browser" else []
    if extra:
        raise fail(f"a browser key is public and may see only {', '.join(BROWSER_FIELDS)}, "
                   f"not {', '.join(extra)} (use a server key on your backend)")


def load_keys(path: Path | str | None = None) -> KeysConfig:
    """Read the keys file; a missing file means no keys (every call answers 401)."""
    path = Path(path or settings.serve_keys_path())
    if not path.exists():
        return KeysConfig()
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise KeysFileError("expected a mapping with `keys` and `cors_origins`", file=str(path))
    try:
        parsed = KeysFile.model_validate(raw)
    except ValidationError as exc:
        raise _file_error(exc, raw, str(path)) from None
    keys = []
    for entry in parsed.keys:
        def fail(reason: str, field: str, name: str = entry.name) -> KeysFileError:
            return KeysFileError(reason, file=str(path), key=name, field=field)

        fields = _names(entry.fields if entry.fields is not None
                        else list(BROWSER_FIELDS if entry.kind == "browser" else ALL_FIELDS), ALL_FIELDS,
                        lambda reason: fail(reason, "fields"))
        _check_browser_fields(entry.kind, fields, lambda reason: fail(reason, "fields"))
        keys.append(ApiKey(entry.name, entry.sha256.lower(),
                           _names(entry.endpoints, ENDPOINTS, lambda reason: fail(reason, "endpoints")),
                           fields, entry.rate_limit.per_second, entry.rate_limit.burst, entry.kind))
    return KeysConfig(keys, parsed.cors_origins)


def _file_error(exc: ValidationError, raw: dict, path: str) -> KeysFileError:
    """The first mistake, naming the key by its name when it has one (keys[2] otherwise)."""
    field, reason = first_problem(exc, KeysFile)
    if match := re.fullmatch(r"keys\[(\d+)\]\.?(.*)", field):
        entry = raw["keys"][int(match.group(1))]
        name = entry.get("name") if isinstance(entry, dict) else None
        return KeysFileError(reason, file=path, key=str(name) if name else f"keys[{match.group(1)}]",
                             field=match.group(2) or None)
    return KeysFileError(reason, file=path, field=field)


def new_key() -> str:
    """A fresh random key (shown once, never stored)."""
    return "atv_" + secrets.token_urlsafe(24)


def add_key(path: Path | str, name: str, *, fields: list[str] | None = None, endpoints: list[str] | None = None,
            browser: bool = False, per_second: float | None = None, burst: int | None = None) -> str:
    """Create a key, append its hash to the keys file and return the key itself (to print once)."""
    path = Path(path)
    config = load_keys(path)
    if any(k.name == name for k in config.keys):
        raise KeysFileError("a key of this name exists already", file=str(path), key=name)

    def option(flag: str):
        return lambda reason: KeysFileError(f"{flag}: {reason}")

    chosen = _names(fields, ALL_FIELDS, option("--fields")) if fields else frozenset(
        BROWSER_FIELDS if browser else ALL_FIELDS)
    kind = "browser" if browser else "server"
    _check_browser_fields(kind, chosen, option("--fields"))
    key = new_key()
    config.keys.append(ApiKey(name, hash_key(key), _names(endpoints or "*", ENDPOINTS, option("--endpoints")), chosen,
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
