"""Delivering one batch: pace, send, retry on the platform's signal, halve a refused batch.

Every row comes back with the destination's verdict (`RowResult`) and how many
requests it took; a row is only ever confirmed by the destination's own answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import polars as pl

from activations.destinations.base import (
    BatchPart,
    BatchRefused,
    Destination,
    Operation,
    QuotaExhausted,
    RetryableError,
    RowResult,
)
from activations.engine.pace import TokenBucket


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 8  # failed requests (5xx, timeouts) per batch before its rows are recorded as rejected
    base_delay: float = 0.5  # first back-off when the platform gives no signal; doubles each try
    max_delay: float = 60.0
    longest_wait: float = 900.0  # a platform asking for a longer pause, in one go or in all, stops the sync

    def backoff(self, tries: int) -> float:
        # Full jitter: many threads retrying at once must not come back together.
        return random.uniform(0.5, 1.0) * min(self.max_delay, self.base_delay * 2 ** (tries - 1))


class GaveUp(RowResult):
    """Not the destination's verdict on the row: the engine stopped trying (retries spent, answers
    missing). Unlike a row the destination refused, it may well go through next time."""


class SyncStopped(Exception):
    """The destination will not take more for now (quota spent, or a pause too long to wait out)."""


@dataclass(frozen=True)
class Delivered:
    results: list[RowResult]
    tries: list[int]  # requests each row took
    resent: int = 0  # rows carried again by a retried request (the quota a failure cost)


def deliver(
    client: Destination,
    operation: Operation,
    batch: pl.DataFrame,
    part: BatchPart | None,
    bucket: TokenBucket,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    on_pause: Callable[[float], None] | None = None,
) -> Delivered:
    """Send `batch` until the destination answers for every row, or gives up on some.

    A rate-limit answer (429, or a Retry-After) says "later", not "no": it is waited out, exactly as
    long as the platform said, and does not count against `max_tries`; waiting longer than
    `longest_wait` in all stops the sync, so the rows stay planned for the next run rather than being
    recorded as refused. A failure handing back the step that failed (`RetryableError.resume`) has
    that step retried, not the whole send. A destination without idempotent writes never gets a batch
    twice in a run: a 5xx or a timeout leaves its rows undelivered for the next run. `on_pause(seconds)` hears of every rate-limit pause.
    """
    rows = batch.height
    tries = failures = resent = 0
    limited = 0.0  # seconds waited on rate-limit answers
    step: Callable[[], list[RowResult]] = lambda: client.send(operation, batch, part)  # noqa: E731
    while True:
        tries += 1
        resent += rows if tries > 1 else 0
        bucket.acquire()
        try:
            results = step()
        except QuotaExhausted as exc:
            raise SyncStopped(str(exc)) from None
        except RetryableError as exc:
            rate_limited = exc.retry_after is not None or exc.status == 429
            if not rate_limited and not client.capabilities.idempotent_writes:
                # A 5xx or a timeout may come after the destination wrote the batch: sent again, a receiver
                # that does not dedupe would hold it twice. Left undelivered; the next run sends it again.
                verdict = GaveUp(False, exc.status, f"not resent within the run ({exc}): the destination may "
                                                    "have taken it, and its writes are not idempotent")
                return Delivered([verdict] * rows, [tries] * rows, resent)
            failures += 0 if rate_limited else 1
            if failures >= policy.max_tries:
                verdict = GaveUp(False, exc.status, f"gave up after {tries} tries: {exc}")
                return Delivered([verdict] * rows, [tries] * rows, resent)
            wait = exc.retry_after if exc.retry_after is not None else policy.backoff(tries)
            if wait > policy.longest_wait or (rate_limited and limited + wait > policy.longest_wait):
                raise SyncStopped(f"{exc}: the destination asks to wait {limited + wait:.0f} s") from None
            if rate_limited:
                limited += wait
                bucket.pause(wait)  # a rate-limit signal holds back every thread, not just this one
                if on_pause is not None:
                    on_pause(wait)
            if exc.resume is not None:
                step = exc.resume
            sleep(wait)
            continue
        except BatchRefused as exc:
            isolated = _isolate(client, operation, batch, exc, bucket, policy, sleep, tries, on_pause)
            return replace(isolated, resent=isolated.resent + resent)
        if len(results) != rows:
            verdict = GaveUp(False, None, f"{client.capabilities.type}: {len(results)} answers for {rows} rows")
            return Delivered([verdict] * rows, [tries] * rows, resent)
        return Delivered(list(results), [tries] * rows, resent)


def _isolate(client, operation, batch, refusal: BatchRefused, bucket, policy, sleep, tries, on_pause) -> Delivered:
    """A refused batch: set aside the rows the platform named, else halve until the bad rows stand alone."""
    rows = batch.height
    named = {i: reason for i, reason in refusal.rejected_rows.items() if 0 <= i < rows}
    if named:
        results: list[RowResult | None] = [None] * rows
        counts = [tries] * rows
        for i, reason in named.items():
            results[i] = RowResult(False, refusal.status, reason)
        rest = [i for i in range(rows) if i not in named]
        if rest:
            again = deliver(client, operation, batch[rest], None, bucket, policy, sleep, on_pause)
            for i, result, more in zip(rest, again.results, again.tries, strict=True):
                results[i], counts[i] = result, tries + more
            return Delivered(results, counts, len(rest) + again.resent)  # type: ignore[arg-type]
        return Delivered(results, counts)  # type: ignore[arg-type]
    if rows == 1:
        return Delivered([RowResult(False, refusal.status, refusal.reason)], [tries])
    half = rows // 2
    left = deliver(client, operation, batch[:half], None, bucket, policy, sleep, on_pause)
    right = deliver(client, operation, batch[half:], None, bucket, policy, sleep, on_pause)
    return Delivered(left.results + right.results, [tries + t for t in left.tries + right.tries],
                     rows + left.resent + right.resent)
