"""The feedback loop without anyone running a command: messages go out over real SMTP to the
sandbox, the sandbox's ESP reports what recipients did (its event feed, over HTTP), the feedback
step lands and loads it, and the next messaging pass no longer writes to bounced, unsubscribed or
complaining addresses."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from activations.messaging.channels import OutgoingMessage, SmtpChannel
from activations.messaging.feedback import (
    EventFeed,
    FeedbackError,
    collect,
    event_feed,
    fetch_events,
    write_landing_file,
)
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from tests.messaging.test_send import NO_CAPS, NOW, add_customer, add_occurrence, create_tables, make_trigger

pytestmark = pytest.mark.xdist_group("feedback_loop")

PEOPLE = {"c1": "bounce.me@example.it", "c2": "unsubscribe.me@example.it", "c3": "complain.me@example.it",
          "c4": "happy.reader@example.it"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from sandbox.server import running_sandbox

    with running_sandbox(tmp_path_factory.mktemp("feedback-sandbox"), port=0, smtp_port=0) as url:
        yield url


@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        create_tables(con)
        for customer, address in PEOPLE.items():
            add_customer(con, customer, email_address=address)
    return path


def send(warehouse: Path, sandbox, keys: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """One messaging pass for new occurrences `keys` (trigger key -> customer); the ledger's state per key."""
    channel = SmtpChannel("127.0.0.1", sandbox.smtp_port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
    try:
        with duckdb.connect(str(warehouse)) as con:
            for key, customer in keys.items():
                add_occurrence(con, key, customer)
            run_pass(con, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW)
            rows = con.execute("select trigger_key, state, reason from activation.message_ledger").fetchall()
    finally:
        channel.close()
    return {key: (state, reason) for key, state, reason in rows if key in keys}


def feed(sandbox) -> EventFeed:
    return EventFeed(f"{sandbox}/_sandbox/mail/events")


def test_bounces_unsubscribes_and_complaints_come_back_and_stop_the_next_message(sandbox, warehouse, tmp_path):
    landing = tmp_path / "landing"
    first = send(warehouse, sandbox, {f"k{n}": c for n, c in enumerate(PEOPLE, start=1)})
    assert {state for state, _ in first.values()} == {"sent"}

    report = collect(landing, warehouse, feed=feed(sandbox), now=NOW)
    assert report.events["bounce"] == 1 and report.events["unsubscribe"] == 1 and report.events["complaint"] == 1
    assert report.events["delivered"] == 3  # the bounced message was never delivered
    assert report.landed is not None and report.landed.parent == landing / "email_engagement"
    assert report.files_loaded == 1 and report.rows_loaded == sum(report.events.values())
    assert report.suppressed == 3

    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = con.execute("""select email, event_type, occurred_at, message_id from raw.email_engagement""").fetchall()
        sent_ids = {r[0] for r in con.execute("select message_id from activation.message_ledger").fetchall()}
    assert {m for *_, m in loaded} == sent_ids  # every event names the message it is about
    # Nothing dated in the future: the sandbox's recipients act at once, stamped by the batch at the latest.
    assert max(at for _, _, at, _ in loaded) <= datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)

    # Asked again: nothing new, no new file, nothing more suppressed.
    again = collect(landing, warehouse, feed=feed(sandbox), now=NOW)
    assert (again.events, again.landed, again.files_loaded, again.suppressed) == ({}, None, 0, 0)

    # The next occurrences of the same people: only the happy reader is written to.
    second = send(warehouse, sandbox, {f"k{n}": c for n, c in enumerate(PEOPLE, start=5)})
    assert second["k8"] == ("sent", None)
    for key in ("k5", "k6", "k7"):
        assert second[key] == ("suppressed", "on the suppression list"), key


def test_without_a_sandbox_engagement_comes_from_landing_files_only(warehouse, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    landing = tmp_path / "landing"
    export = [{"engagement_id": "x1", "email": "gone@example.it", "event_type": "unsubscribe",
               "occurred_at": "2026-11-19T10:00:00Z", "campaign": "c", "message_id": None, "bounce_type": None,
               "url": None}]
    write_landing_file(export, landing, prefix="esp-export")  # what an ESP's export or a webhook receiver drops

    default = event_feed({"ATTIVA_SANDBOX_PORT": str(closed)})  # a sandbox port is no feed
    assert default.url is None
    report = collect(landing, warehouse, feed=default, now=NOW)
    assert report.feed == "landing files only (no ATTIVA_ESP_EVENTS_URL)"
    assert (report.files_loaded, report.rows_loaded, report.suppressed) == (1, 1, 1)

    # Configured explicitly, an unreachable feed is an error that names it.
    explicit = event_feed({"ATTIVA_ESP_EVENTS_URL": f"http://127.0.0.1:{closed}/events"})
    with pytest.raises(FeedbackError, match=f"127.0.0.1:{closed}/events"):
        collect(landing, warehouse, feed=explicit, now=NOW)
    assert event_feed({"ATTIVA_ESP_EVENTS_URL": "none"}) == EventFeed(None)


def test_the_sandbox_feed_hands_out_large_sends_in_batches(sandbox):
    """At most `limit` messages per answer; the feedback step asks until an empty one."""
    requests.post(f"{sandbox}/_sandbox/mail/events", params={"limit": 100_000}, timeout=10)  # earlier tests' mail
    ids = [f"batch_test.{n:020d}.1@attiva" for n in range(5)]
    channel = SmtpChannel("127.0.0.1", sandbox.smtp_port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
    try:
        for n, message_id in enumerate(ids):
            delivery = channel.send(OutgoingMessage(
                message_id=message_id, to_email=f"reader{n}@example.it", to_name=None, from_email="ciao@emporionove.it",
                from_name="Emporio Nove", subject="hi", html="<p>hi</p>", text="hi", campaign="batch_test"))
            assert delivery.ok, delivery
    finally:
        channel.close()
    first = requests.post(f"{sandbox}/_sandbox/mail/events", params={"limit": 2}, timeout=10).json()
    assert {e["attiva_message_id"] for e in first} == set(ids[:2])
    assert {e["attiva_message_id"] for e in fetch_events(f"{sandbox}/_sandbox/mail/events")} == set(ids[2:])
    assert fetch_events(f"{sandbox}/_sandbox/mail/events") == []
