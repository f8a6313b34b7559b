"""Pacing requests to a destination: one token bucket per destination instance, shared by every
sync in the process, so two syncs to one HubSpot account together stay under its limit.
"""

from __future__ import annotations

import threading
import time

from activations.destinations.base import Capabilities


class TokenBucket:
    """At most `burst + rate * t` requests in any `t` seconds; `pause` stops everyone for a while.

    Platforms count requests in a rolling window, so the refill rate leaves room for the burst:
    `burst + rate * window` never exceeds the platform's requests per window.
    """

    def __init__(self, requests_per_window: int | None, window_seconds: float | None, burst: int) -> None:
        self.unlimited = requests_per_window is None or window_seconds is None
        self.burst = max(1, min(burst, requests_per_window or burst))
        self.rate = 0.0 if self.unlimited else max(requests_per_window - self.burst, 1) / window_seconds
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self.paused_seconds = 0.0  # time paused in all, overlapping pauses counted once
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._paused_until - now
                if wait <= 0 and self.unlimited:
                    return waited
                if wait <= 0:
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                    self._stamp = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return waited
                    wait = (1 - self._tokens) / self.rate
            time.sleep(wait)
            waited += wait

    @property
    def paused_until(self) -> float:
        """The `time.monotonic()` at which the current pause ends (in the past when there is none)."""
        return self._paused_until

    def pause(self, seconds: float) -> None:
        """The platform said "slow down": nobody sends for `seconds`, and the burst is spent."""
        with self._lock:
            now = time.monotonic()
            until = max(self._paused_until, now + seconds)
            self.paused_seconds += until - max(self._paused_until, now)
            self._paused_until = until
            self._tokens = 0.0
            self._stamp = max(self._stamp, self._paused_until)


_buckets: dict[str, TokenBucket] = {}  # by instance and limit
_buckets_lock = threading.Lock()


def bucket_for(destination: str, capabilities: Capabilities) -> TokenBucket:
    """The bucket of one destination instance, made on first use and shared from then on."""
    key = f"{destination}:{capabilities.requests_per_window}/{capabilities.window_seconds}"
    with _buckets_lock:
        if key not in _buckets:
            # A small burst: a big one would have to be paid back by a slower refill.
            burst = max(1, (capabilities.requests_per_window or 1) // 50)
            _buckets[key] = TokenBucket(capabilities.requests_per_window, capabilities.window_seconds, burst)
        return _buckets[key]
