"""Every sandboxed destination: transport failures, platform refusals and rate limits become the
right exception, and no message, reason, repr or log line ever carries the secret."""

from __future__ import annotations

import logging
import time

import pytest

from activations.destinations.base import (
    BatchRefused,
    DestinationConfigError,
    DestinationError,
    RetryableError,
    RowResult,
)
from activations.destinations.transport import DestinationUnreachable

from .conftest import SANDBOX_TYPES, TOKENS
from .setups import OPTIONS, batch_for

WRONG_TOKEN = "wrong-Vb3nQ8sT5yHc1Jf"
SECRETS = [*TOKENS.values(), WRONG_TOKEN]


def texts_of(outcome) -> list[str]:
    if isinstance(outcome, BaseException):
        return [str(outcome), repr(outcome), *map(str, outcome.args), str(getattr(outcome, "reason", ""))]
    return [repr(r) for r in outcome] + [str(r.reason) for r in outcome]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret leaked into: {text[:200]}"


def attempt(client, batch, operation="upsert"):
    try:
        return client.send(operation, batch)
    except DestinationError as exc:
        return exc


# What each platform's rate-limit signal should become: (status, lowest, highest retry_after).
RATE_LIMIT_SIGNAL = {
    "hubspot": (429, 0.1, 10.0),  # the rest of the 10 s window
    "salesforce": (403, 1.0, 60.0),  # REQUEST_LIMIT_EXCEEDED with allocation left: concurrency, short
    "meta": (400, 60.0, 3600.0),  # code 17; X-Business-Use-Case-Usage minutes
    "google": (429, 0.1, 60.0),  # RESOURCE_EXHAUSTED: the rest of the minute
    "mailchimp": (429, 0.5, 10.0),  # too many connections
    "sendgrid": (429, 0.0, 61.0),  # X-RateLimit-Reset epoch
    "brevo": (429, 0.0, 2.0),  # x-sib-ratelimit-reset seconds
    "webhook": (429, 0.5, 2.0),  # Retry-After
    "meta_conversions": (400, 60.0, 3600.0),  # code 17, as the custom audiences
    "google_conversions": (429, 0.1, 60.0),  # RESOURCE_EXHAUSTED, as the audiences' client
    "meta_catalog": (400, 60.0, 3600.0),  # code 17, as the custom audiences
    "google_merchant": (429, None, None),  # RESOURCE_EXHAUSTED of an unpublished quota: the engine's back-off
}


@pytest.mark.parametrize("dest_type", SANDBOX_TYPES)
def test_rate_limit_signal_is_retryable_with_the_platform_wait(sandbox, dest_type, caplog):
    caplog.set_level(logging.DEBUG)
    client = sandbox.client(dest_type, **OPTIONS[dest_type])
    batch = batch_for(client)
    sandbox.faults(dest_type, rate_limit_rate=1.0)
    outcome = attempt(client, batch)
    assert isinstance(outcome, RetryableError), outcome
    status, low, high = RATE_LIMIT_SIGNAL[dest_type]
    assert outcome.status == status
    if low is None:  # the platform does not say for how long
        assert outcome.retry_after is None, outcome.retry_after
    else:
        assert outcome.retry_after is not None and low <= outcome.retry_after <= high, outcome.retry_after
    assert_no_secret(*texts_of(outcome), repr(client), caplog.text)


@pytest.mark.parametrize("dest_type", SANDBOX_TYPES)
def test_server_errors_are_retryable(sandbox, dest_type, caplog):
    caplog.set_level(logging.DEBUG)
    client = sandbox.client(dest_type, **OPTIONS[dest_type])
    batch = batch_for(client)
    sandbox.faults(dest_type, error_rate=1.0)
    outcome = attempt(client, batch)
    assert isinstance(outcome, RetryableError) and outcome.status >= 500, outcome
    assert_no_secret(*texts_of(outcome), caplog.text)


@pytest.mark.parametrize("dest_type", SANDBOX_TYPES)
def test_timeouts_are_retryable(sandbox, dest_type):
    client = sandbox.client(dest_type, read_timeout=0.3, **OPTIONS[dest_type])
    batch = batch_for(client)
    sandbox.faults(dest_type, timeout_rate=1.0, timeout_seconds=1.0)
    started = time.monotonic()
    outcome = attempt(client, batch)
    assert isinstance(outcome, RetryableError) and "timed out" in outcome.reason, outcome
    assert time.monotonic() - started < 1.0
    assert_no_secret(*texts_of(outcome))


@pytest.mark.parametrize("dest_type", SANDBOX_TYPES)
def test_a_refused_connection_is_tried_again_quickly_then_fails_the_run(sandbox, dest_type, closed_port_url):
    client = sandbox.client(dest_type, **OPTIONS[dest_type])
    batch = batch_for(client)
    client.http.base_url = f"{closed_port_url}/{dest_type}"
    started = time.monotonic()
    outcome = attempt(client, batch)
    # Not a RetryableError: the engine's back-off would take a minute to say the destination is down.
    assert isinstance(outcome, DestinationUnreachable), outcome
    assert "connection refused" in str(outcome) and "after 3 tries" in str(outcome)
    assert time.monotonic() - started < 3.0
    assert_no_secret(*texts_of(outcome))


@pytest.mark.parametrize("dest_type", SANDBOX_TYPES)
def test_a_wrong_secret_is_a_configuration_error(sandbox, dest_type, caplog):
    caplog.set_level(logging.DEBUG)
    client = sandbox.client(dest_type, token=WRONG_TOKEN, **OPTIONS[dest_type])
    outcome = attempt(client, batch_for(client))
    assert isinstance(outcome, DestinationConfigError) and outcome.status == 401, outcome
    assert_no_secret(*texts_of(outcome), repr(client), repr(client.config), caplog.text)


@pytest.mark.parametrize("dest_type", SANDBOX_TYPES)
def test_rejected_rows_carry_no_secret(sandbox, dest_type):
    client = sandbox.client(dest_type, **OPTIONS[dest_type])
    batch = batch_for(client)
    sandbox.faults(dest_type, row_reject_rate=1.0)
    outcome = attempt(client, batch)
    if isinstance(outcome, BatchRefused):  # Google fails the whole request fast, naming the members;
        # Meta's Conversions API refuses the request at its first invalid event, and names that one.
        named = [0] if dest_type == "meta_conversions" else list(range(batch.height))
        assert sorted(outcome.rejected_rows) == named
        assert_no_secret(*texts_of(outcome), *outcome.rejected_rows.values())
        return
    assert isinstance(outcome, list) and all(isinstance(r, RowResult) for r in outcome), outcome
    assert len(outcome) == batch.height
    assert not any(r.ok for r in outcome), outcome
    assert_no_secret(*texts_of(outcome))
