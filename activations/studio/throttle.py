"""Failed sign-ins, counted per name typed: after MAX_FAILURES within WINDOW seconds that name is
refused (even with the right password) until the oldest of them leaves the window. Per name, not per
address: behind the TLS proxy a deployment puts in front of the console every visitor comes from the
same address. A guesser can lock a name out for WINDOW seconds; they cannot try more than
MAX_FAILURES passwords per WINDOW on it (and each costs an argon2 hash)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

MAX_FAILURES = 5
WINDOW = 900.0
MAX_NAMES = 10_000  # names tracked at most (the least recently failed go first)


class LoginThrottle:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, name: str) -> float:
        """0 when `name` may try to sign in now, else the seconds until it may."""
        with self._lock:
            failures = self._recent(name)
            if len(failures) < MAX_FAILURES:
                return 0.0
            return failures[0] + WINDOW - self._clock()

    def failed(self, name: str) -> None:
        with self._lock:
            failures = self._recent(name)
            failures.append(self._clock())
            self._failures[name] = failures
            self._failures.move_to_end(name)
            while len(self._failures) > MAX_NAMES:
                self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)

    def _recent(self, name: str) -> deque[float]:
        failures = self._failures.get(name, deque())
        while failures and failures[0] <= self._clock() - WINDOW:
            failures.popleft()
        return failures
