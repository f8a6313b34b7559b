"""Fault injection: seeded 5xx, rate-limit signals, held responses, latency and row rejections.

Request-level faults come from one seeded random stream per destination, so a given
seed yields the same sequence of outcomes for the same sequence of requests. Row
rejections do not depend on request order at all: a row is rejected when a hash of
(seed, destination, row identifier) falls under the rate, so retrying the same row is
rejected again, as a real validation failure would be.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import asdict, dataclass, fields, replace
from hashlib import blake2b
from typing import Any

FAULT_FIELDS = (
    "error_rate",
    "rate_limit_rate",
    "timeout_rate",
    "timeout_seconds",
    "latency_ms",
    "row_reject_rate",
    "seed",
)
RATE_FIELDS = ("error_rate", "rate_limit_rate", "timeout_rate", "row_reject_rate")


@dataclass(frozen=True)
class FaultSettings:
    """What to inject into one destination's traffic; all zero by default."""

    error_rate: float = 0.0  # share of requests answered with the vendor's 5xx
    rate_limit_rate: float = 0.0  # share answered with the platform's own rate-limit signal
    timeout_rate: float = 0.0  # share whose (applied) answer is held for timeout_seconds
    timeout_seconds: float = 10.0
    latency_ms: float = 0.0  # added to every request
    row_reject_rate: float = 0.0  # share of row identifiers rejected in the vendor's per-row shape
    seed: int = 1

    def validated(self) -> FaultSettings:
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate + self.rate_limit_rate + self.timeout_rate > 1.0:
            raise ValueError("error_rate + rate_limit_rate + timeout_rate must not exceed 1")
        if self.timeout_seconds < 0 or self.latency_ms < 0:
            raise ValueError("timeout_seconds and latency_ms must not be negative")
        return self

    def updated(self, changes: dict[str, Any]) -> FaultSettings:
        """A copy with ``changes`` applied (unknown keys refused), validated."""
        unknown = set(changes) - set(FAULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        typed: dict[str, Any] = {}
        for f in fields(self):
            if f.name in changes:
                typed[f.name] = int(changes[f.name]) if f.name == "seed" else float(changes[f.name])
        return replace(self, **typed).validated()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Draws the faults of one destination from its settings."""

    def __init__(self, destination: str, settings: FaultSettings | None = None) -> None:
        self.destination = destination
        self.configure(settings or FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        """Apply new settings and restart the seeded stream."""
        self.settings = settings
        stream_seed = settings.seed * 1_000_003 + zlib.crc32(self.destination.encode())
        self._random = random.Random(stream_seed)
        self._row_salt = f"{settings.seed}:{self.destination}:".encode()
        self._row_threshold = int(settings.row_reject_rate * 2**64)

    def draw(self) -> str | None:
        """The request-level fault for the next request: "error", "rate_limit", "timeout" or None."""
        s = self.settings
        if not (s.error_rate or s.rate_limit_rate or s.timeout_rate):
            return None
        u = self._random.random()
        if u < s.error_rate:
            return "error"
        if u < s.error_rate + s.rate_limit_rate:
            return "rate_limit"
        if u < s.error_rate + s.rate_limit_rate + s.timeout_rate:
            return "timeout"
        return None

    @property
    def rejects_rows(self) -> bool:
        return self._row_threshold > 0

    def rejects(self, identifier: str) -> bool:
        """Whether the row with this identifier is rejected; the same answer every time."""
        if not self._row_threshold:
            return False
        digest = blake2b(self._row_salt + identifier.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._row_threshold


REJECTION_MESSAGE = "rejected by sandbox fault injection"
