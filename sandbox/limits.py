"""Rate limits as the platforms enforce them: rolling windows, daily quotas, connection caps.

All clocks are injectable so tests can drive them; the server uses ``time.monotonic``
for windows and the wall clock only where a vendor reports an epoch or a calendar day.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class WindowCheck:
    """The outcome of asking a limiter for one request, with what the vendor reports in headers."""

    allowed: bool
    limit: int | None
    remaining: int | None
    reset_after: float  # seconds until a slot frees (0 when one is free now)
    window_seconds: float
    policy: str = "window"


UNLIMITED = WindowCheck(allowed=True, limit=None, remaining=None, reset_after=0.0, window_seconds=0.0)


class RollingWindow:
    """At most ``limit`` accepted requests in any ``window_seconds``; ``limit=None`` means unlimited.

    Refused requests are not counted, so a client that backs off for ``reset_after``
    always gets through (HubSpot, Google and SendGrid behave this way).
    """

    def __init__(self, limit: int | None, window_seconds: float, clock=time.monotonic) -> None:
        self.limit = limit
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._stamps: deque[float] = deque()

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        stamps = self._stamps
        while stamps and stamps[0] <= horizon:
            stamps.popleft()

    def acquire(self) -> WindowCheck:
        """Take a slot if one is free; report the state after the attempt."""
        if self.limit is None:
            return UNLIMITED
        now = self._clock()
        self._expire(now)
        if len(self._stamps) >= self.limit:
            reset_after = self._stamps[0] + self.window_seconds - now if self._stamps else self.window_seconds
            return WindowCheck(False, self.limit, 0, max(reset_after, 0.001), self.window_seconds)
        self._stamps.append(now)
        reset_after = self._stamps[0] + self.window_seconds - now
        return WindowCheck(True, self.limit, self.limit - len(self._stamps), reset_after, self.window_seconds)

    def exhausted(self) -> WindowCheck:
        """What a refusal looks like right now, without consuming anything (used by fault injection)."""
        if self.limit is None:
            return WindowCheck(False, None, 0, 1.0, self.window_seconds or 1.0)
        now = self._clock()
        self._expire(now)
        reset_after = self._stamps[0] + self.window_seconds - now if self._stamps else self.window_seconds
        return WindowCheck(False, self.limit, 0, max(reset_after, 0.001), self.window_seconds)

    def count_within(self, seconds: float) -> int:
        """Accepted requests in the last ``seconds`` (for HubSpot's per-second header)."""
        now = self._clock()
        return len(self._stamps) - bisect_right(self._stamps, now - seconds)

    def used(self) -> int:
        if self.limit is None:
            return len(self._stamps)
        self._expire(self._clock())
        return len(self._stamps)


class DailyQuota:
    """A per-calendar-day request count that resets at UTC midnight (HubSpot's daily limit)."""

    def __init__(self, limit: int | None, today=lambda: datetime.now(UTC).date()) -> None:
        self.limit = limit
        self._today = today
        self._day = today()
        self.used = 0

    def acquire(self) -> WindowCheck:
        day = self._today()
        if day != self._day:
            self._day, self.used = day, 0
        if self.limit is None:
            self.used += 1
            return WindowCheck(True, None, None, 0.0, 86_400.0, policy="daily")
        if self.used >= self.limit:
            return WindowCheck(False, self.limit, 0, seconds_to_utc_midnight(), 86_400.0, policy="daily")
        self.used += 1
        return WindowCheck(
            True, self.limit, self.limit - self.used, seconds_to_utc_midnight(), 86_400.0, policy="daily"
        )

    def available(self) -> bool:
        if self._today() != self._day:
            return True
        return self.limit is None or self.used < self.limit

    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def seconds_to_utc_midnight() -> float:
    now = datetime.now(UTC)
    return 86_400.0 - (now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6)


class ConnectionCap:
    """At most ``limit`` requests in flight at once (Mailchimp's simultaneous-connection limit)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.in_flight = 0

    def enter(self) -> bool:
        if self.limit is not None and self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight = max(self.in_flight - 1, 0)


def ceil_seconds(value: float) -> int:
    """Whole seconds, rounded up, never below 1 (what Retry-After style headers carry)."""
    return max(1, math.ceil(value))
