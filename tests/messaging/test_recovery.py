"""What the next pass makes of messages whose outcome is unknown, against the real sandbox over loopback.

SendGrid can be asked (its Email Activity, searched by our custom arg): a message it accepted
becomes `sent` without being sent again, one it never got is sent again, and nothing is decided
before the feed has had time to show it. Without a send journal nothing is guessed as unsent.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from datetime import timedelta

import duckdb
import pytest
import requests

from activations.destinations.base import Secret
from activations.messaging import journal
from activations.messaging.channels import SendGridMailChannel
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from sandbox.server import running_sandbox

from .test_send import NO_CAPS, NOW, add_customer, add_occurrence, create_tables, make_trigger

pytestmark = pytest.mark.xdist_group("messaging_send")
TOKEN = "recovery-test-sendgrid-token"
KEY = ("favourite_on_promotion", "k1", 1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[str]:
    with running_sandbox(tmp_path_factory.mktemp("recovery") / "sandbox", smtp_port=None,
                         tokens={"sendgrid": TOKEN}, env={}) as base:
        yield base


@pytest.fixture
def esp(sandbox):
    """A SendGrid channel on a fresh sandbox store, and the ids of what it accepted so far."""
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "sendgrid"}, timeout=10).raise_for_status()

    def accepted() -> collections.Counter:
        mail = requests.get(f"{sandbox}/_sandbox/state/sendgrid", timeout=10).json()["mail"]
        return collections.Counter(m["message"]["custom_args"]["attiva_message_id"] for m in mail)

    def channel(**options) -> SendGridMailChannel:
        return SendGridMailChannel(f"{sandbox}/sendgrid", Secret(TOKEN), from_email="ciao@emporionove.it",
                                   **{"activity_lag": 0, **options})

    return channel, accepted


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    create_tables(con)
    add_customer(con, "c1")
    add_occurrence(con, "k1", "c1")
    yield con
    con.close()


def row(con) -> tuple:
    return con.execute("select state, reason, provider_id, attempts from activation.message_ledger").fetchone()


def interrupted_in_flight(con) -> None:
    """As a pass killed right after journaling the message `sending`, before the channel answered."""
    from activations.messaging import ledger

    ledger.ensure_ledger(con)
    ledger.plan_new(con, make_trigger(), NOW)
    sends = journal.SendJournal(journal.path_for(con))
    sends.queue([KEY])
    sends.sending(KEY, NOW.replace(tzinfo=None))
    sends.close()
    con.execute("update activation.message_ledger set state = 'queued'")


def test_a_read_timeout_is_unknown_then_confirmed_by_the_activity_feed_never_resent(warehouse, esp, sandbox):
    channel, accepted = esp
    faults = f"{sandbox}/_sandbox/faults"
    requests.post(faults, json={"destination": "sendgrid", "timeout_rate": 1, "timeout_seconds": 3},
                  timeout=10).raise_for_status()
    try:
        report = run_pass(warehouse, [make_trigger()], {"email": channel(timeout=1)}, Templates(), NO_CAPS, NOW)
    finally:
        requests.post(faults, json={"destination": "sendgrid", "timeout_rate": 0}, timeout=10).raise_for_status()
    state, reason, _, _ = row(warehouse)
    assert state == "unknown" and "outcome unknown" in reason, (state, reason)
    assert report.outcomes["favourite_on_promotion"] == {"unknown": 1}
    assert list(accepted().values()) == [1]  # SendGrid did get it: only its answer was late

    report = run_pass(warehouse, [make_trigger()], {"email": channel()}, Templates(), NO_CAPS, NOW + timedelta(minutes=5))
    state, reason, provider_id, attempts = row(warehouse)
    assert (state, attempts) == ("sent", 1) and "confirmed by email's activity feed" in reason
    assert report.recovered.confirmed == 1 and sum(accepted().values()) == 1  # not sent again
    mail = requests.get(f"{sandbox}/_sandbox/state/sendgrid", timeout=10).json()["mail"]
    assert provider_id == mail[0]["message_id"]


def test_in_flight_but_never_accepted_is_sent_again_once_the_feed_had_time(warehouse, esp):
    channel, accepted = esp
    interrupted_in_flight(warehouse)
    slow_feed = channel(activity_lag=3600)  # SendGrid's feed may lag: absent too early is not "not accepted"
    run_pass(warehouse, [make_trigger()], {"email": slow_feed}, Templates(), NO_CAPS, NOW + timedelta(minutes=10))
    assert row(warehouse)[0] == "unknown" and not accepted()

    report = run_pass(warehouse, [make_trigger()], {"email": slow_feed}, Templates(), NO_CAPS, NOW + timedelta(hours=2))
    state, reason, _, attempts = row(warehouse)
    assert report.recovered.resent == 1 and state == "sent" and attempts == 2
    assert list(accepted().values()) == [1]


def test_without_the_send_journal_a_claimed_message_is_unknown_never_guessed_unsent(warehouse, esp):
    channel, accepted = esp
    interrupted_in_flight(warehouse)
    path = journal.path_for(warehouse)
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    smtp_like = channel()
    del smtp_like.__dict__["activity_lag"]  # a channel that cannot be asked
    run_pass(warehouse, [make_trigger()], {"email": smtp_like}, Templates(), NO_CAPS, NOW)
    state, reason, _, _ = row(warehouse)
    assert state == "unknown" and "no send journal" in reason and "cannot be asked" in reason
    assert not accepted()
