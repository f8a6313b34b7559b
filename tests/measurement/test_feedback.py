"""Engagement feedback: hard bounces, unsubscribes and complaints feed the suppression list; a
SendGrid Event Webhook batch (the sandbox's, or a real one) becomes a landing file ingestion loads."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from activations.messaging.feedback import engagement_rows, refresh_suppressions, write_landing_file
from activations.messaging.policy import Caps, Settings
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from sandbox.engagement import new_events
from sandbox.smtp import MailStore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def sha(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema raw")
    connection.execute("""create table raw.email_engagement (engagement_id varchar, email varchar, event_type varchar,
        occurred_at timestamp, campaign varchar, message_id varchar, bounce_type varchar, url varchar)""")
    connection.execute("""insert into raw.email_engagement values
        ('1', ' Hard@Example.it', 'bounce', '2026-11-01 10:00:00', 'c', null, 'hard', null),
        ('2', 'soft@example.it', 'bounce', '2026-11-01 10:00:00', 'c', null, 'soft', null),
        ('3', 'gone@example.it', 'unsubscribe', '2026-11-02 10:00:00', 'c', null, null, null),
        ('4', 'angry@example.it', 'complaint', '2026-11-03 10:00:00', 'c', null, null, null),
        ('5', 'happy@example.it', 'open', '2026-11-03 10:00:00', 'c', null, null, null),
        ('6', 'happy@example.it', 'click', '2026-11-03 10:01:00', 'c', null, null, 'https://x')""")
    yield connection
    connection.close()


def test_hard_bounces_unsubscribes_and_complaints_are_suppressed_once(con):
    assert refresh_suppressions(con, NOW) == 3
    listed = dict(con.execute("select email_sha256, reason from activation.suppression_list").fetchall())
    assert set(listed) == {sha("hard@example.it"), sha("gone@example.it"), sha("angry@example.it")}
    assert listed[sha("hard@example.it")].startswith("hard bounce on 2026-11-01")
    assert listed[sha("angry@example.it")].startswith("spam complaint")
    assert refresh_suppressions(con, NOW) == 0  # idempotent
    assert con.execute("select count(*) from activation.suppression_list").fetchone()[0] == 3


def test_an_address_already_listed_keeps_its_reason(con):
    refresh_suppressions(con, NOW)
    con.execute("delete from activation.suppression_list where email_sha256 = ?", [sha("gone@example.it")])
    con.execute("insert into activation.suppression_list values (?, 'forgotten (attiva forget)', ?)",
                [sha("gone@example.it"), NOW.replace(tzinfo=None)])
    assert refresh_suppressions(con, NOW) == 0
    reason = con.execute("select reason from activation.suppression_list where email_sha256 = ?",
                         [sha("gone@example.it")]).fetchone()[0]
    assert reason == "forgotten (attiva forget)"


def test_no_engagement_table_yet_is_nothing_to_do(tmp_path):
    with duckdb.connect(str(tmp_path / "empty.duckdb")) as connection:
        assert refresh_suppressions(connection, NOW) == 0
        assert connection.execute("select count(*) from activation.suppression_list").fetchone()[0] == 0


def test_the_messaging_pass_refreshes_suppressions_first(con, tmp_path):
    (tmp_path / "templates").mkdir()
    run_pass(con, [], {}, Templates(tmp_path / "templates"), Settings(caps=Caps(None, None), quiet_hours=None),
             NOW)
    assert con.execute("select count(*) from activation.suppression_list").fetchone()[0] == 3


SENDGRID_BATCH = [
    {"email": "a@example.it", "timestamp": 1763632800, "event": "delivered", "sg_event_id": "ev1",
     "sg_message_id": "sg1.filter", "smtp-id": "<cart.abc.1@attiva>", "category": ["abandoned_cart"],
     "attiva_message_id": "cart.abc.1@attiva", "attiva_campaign": "abandoned_cart"},
    {"email": "a@example.it", "timestamp": 1763636400, "event": "click", "sg_event_id": "ev2",
     "smtp-id": "<cart.abc.1@attiva>", "category": "abandoned_cart", "url": "https://shop/p/1?utm_source=attiva"},
    {"email": "b@example.it", "timestamp": 1763632800, "event": "bounce", "type": "bounce", "sg_event_id": "ev3",
     "attiva_message_id": "cart.def.1@attiva", "attiva_campaign": "abandoned_cart"},
    {"email": "c@example.it", "timestamp": 1763632800, "event": "bounce", "type": "blocked", "sg_event_id": "ev4",
     "attiva_message_id": "cart.ghi.1@attiva", "attiva_campaign": "abandoned_cart"},
    {"email": "d@example.it", "timestamp": 1763632800, "event": "spamreport", "sg_event_id": "ev5"},
    {"email": "e@example.it", "timestamp": 1763632800, "event": "group_unsubscribe", "sg_event_id": "ev6"},
    {"email": "f@example.it", "timestamp": 1763632800, "event": "processed", "sg_event_id": "ev7"},
    {"email": "f@example.it", "timestamp": 1763632800, "event": "deferred", "sg_event_id": "ev8"},
]


def test_a_sendgrid_webhook_batch_becomes_contract_rows():
    rows = {r["engagement_id"]: r for r in engagement_rows(SENDGRID_BATCH)}
    assert set(rows) == {"ev1", "ev2", "ev3", "ev4", "ev5", "ev6"}  # processed and deferred say nothing
    assert rows["ev1"] == {"engagement_id": "ev1", "email": "a@example.it", "event_type": "delivered",
                           "occurred_at": "2025-11-20T10:00:00Z", "campaign": "abandoned_cart",
                           "message_id": "cart.abc.1@attiva", "bounce_type": None, "url": None}
    assert rows["ev2"]["message_id"] == "cart.abc.1@attiva" and rows["ev2"]["campaign"] == "abandoned_cart"
    assert rows["ev2"]["url"].startswith("https://shop/p/1")
    assert (rows["ev3"]["bounce_type"], rows["ev4"]["bounce_type"]) == ("hard", "soft")
    assert (rows["ev5"]["event_type"], rows["ev6"]["event_type"]) == ("complaint", "unsubscribe")


def test_the_landing_file_is_ingested_and_feeds_suppression(tmp_path):
    from activations.ingest import load_landing

    landing = tmp_path / "landing"
    path = write_landing_file(engagement_rows(SENDGRID_BATCH), landing)
    assert path is not None and path.parent == landing / "email_engagement" and path.suffix == ".jsonl"
    assert write_landing_file(engagement_rows(SENDGRID_BATCH), landing) == path  # same batch, same file
    assert write_landing_file([], landing) is None
    warehouse = tmp_path / "warehouse.duckdb"
    report = load_landing(landing, warehouse)
    assert not report.failed_files, str(report)
    with duckdb.connect(str(warehouse)) as connection:
        assert connection.execute("select count(*) from raw.email_engagement").fetchone()[0] == 6
        assert refresh_suppressions(connection, NOW) == 3  # b (hard bounce), d (complaint), e (unsubscribe)
        listed = {r[0] for r in connection.execute("select email_sha256 from activation.suppression_list").fetchall()}
    assert listed == {sha("b@example.it"), sha("d@example.it"), sha("e@example.it")}


def _store_message(store: MailStore, message_id: str, to: str, template: str | None = None,
                   date: str | None = None) -> None:
    raw = (f"Message-ID: <{message_id}>\r\nX-Attiva-Message-Id: {message_id}\r\nTo: {to}\r\nSubject: hi\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n"
           '<a href="https://www.emporionove.it/p/1?utm_source=attiva&amp;utm_medium=email">go</a>\r\n')
    store.append({"id": message_id, "received_at": "2026-11-20T10:00:00.000Z", "mail_from": "ciao@emporionove.it",
                  "rcpt_tos": [to], "message_id": f"<{message_id}>", "attiva_message_id": message_id,
                  "subject": "hi", "size": len(raw), "raw": raw, "attiva_template": template, "date": date})


def test_readers_open_more_of_the_mail_dated_in_their_hour_and_read_it_within_that_hour(tmp_path):
    """What the simulator plants for send-time optimization: a reader's hour (their local clock). The sent
    time is the Date header's (the sender's pinned clock), not when the sandbox received the mail."""
    store = MailStore(tmp_path / "smtp")
    for n in range(600):  # 19:20 and 09:20 in Rome (UTC+1 in November)
        _store_message(store, f"win_back.{n:04d}e.1@attiva", f"eve{n}@example.it", date="2026-11-20T18:20:00Z")
        _store_message(store, f"win_back.{n:04d}m.1@attiva", f"mo{n}@example.it", date="2026-11-20T08:20:00Z")
    store.close()
    readers = {f"{who}{n}@example.it": [19, "Europe/Rome"] for n in range(600) for who in ("eve", "mo")}
    (tmp_path / "recipients.json").write_text(json.dumps({"habits": {"lift": 2.0, "readers": readers}}))
    events = new_events(tmp_path, now=datetime(2026, 11, 25, tzinfo=UTC).timestamp())
    opens = {who: [e for e in events if e["event"] == "open" and e["email"].startswith(who)] for who in ("eve", "mo")}
    delivered = {who: sum(1 for e in events if e["event"] == "delivered" and e["email"].startswith(who))
                 for who in ("eve", "mo")}
    evening, morning = len(opens["eve"]) / delivered["eve"], len(opens["mo"]) / delivered["mo"]
    assert 0.60 <= evening <= 0.80 and 0.28 <= morning <= 0.42  # 0.70 and 0.35, 600 each (se 0.019)
    in_hour = datetime(2026, 11, 20, 18, 20, tzinfo=UTC).timestamp()
    assert all(in_hour < e["timestamp"] < in_hour + 40 * 60 for e in opens["eve"])  # read before 20:00 Rome
    assert any(e["timestamp"] > in_hour + 3600 for e in opens["mo"])  # others, whenever
    assert all(e["timestamp"] >= datetime(2026, 11, 20, 8, 20, tzinfo=UTC).timestamp() for e in opens["mo"])


def test_recipients_json_sets_the_open_and_click_rates_of_a_template(tmp_path):
    """What the simulator plants for an A/B test: every delivered `promo_b` is clicked, no `promo_a` is."""
    store = MailStore(tmp_path / "smtp")
    for n in range(200):
        _store_message(store, f"promo.{n:04d}a.1@attiva", f"anna{n}@example.it", "promo_a")
        _store_message(store, f"promo.{n:04d}b.1@attiva", f"bruno{n}@example.it", "promo_b")
    store.close()
    (tmp_path / "recipients.json").write_text(json.dumps({"templates": {
        "promo_a": {"open": 1.0, "click_given_open": 0.0}, "promo_b": {"open": 1.0, "click_given_open": 1.0}}}))
    counts: dict[tuple[str, str], int] = {}
    for event in new_events(tmp_path):
        key = ("a" if event["email"].startswith("anna") else "b", event["event"])
        counts[key] = counts.get(key, 0) + 1
    for variant in ("a", "b"):
        assert counts[(variant, "open")] == counts[(variant, "delivered")] > 180  # all but the few bounces
    assert counts.get(("a", "click"), 0) == 0 and counts[("b", "click")] == counts[("b", "open")]


def test_the_sandbox_reports_each_message_once(tmp_path):
    store = MailStore(tmp_path / "smtp")
    _store_message(store, "abandoned_cart.aaa.1@attiva", "bounce.me@example.it")
    _store_message(store, "abandoned_cart.bbb.1@attiva", "unsubscribe.me@example.it")
    store.close()
    events = new_events(tmp_path)
    by_email: dict[str, list[str]] = {}
    for event in events:
        by_email.setdefault(event["email"], []).append(event["event"])
        assert event["attiva_campaign"] == "abandoned_cart"
    assert by_email["bounce.me@example.it"] == ["bounce"]
    assert by_email["unsubscribe.me@example.it"][:2] == ["delivered", "open"]
    assert "unsubscribe" in by_email["unsubscribe.me@example.it"]
    assert new_events(tmp_path) == []  # the cursor moved past them
    rows = engagement_rows(events)
    assert {r["message_id"] for r in rows} == {"abandoned_cart.aaa.1@attiva", "abandoned_cart.bbb.1@attiva"}
    assert json.dumps(rows)  # plain JSON, as the landing file holds it


def test_attiva_feedback_lands_a_webhook_batch_and_the_event_feed(tmp_path, capsys, monkeypatch):
    from activations.cli import main
    from sandbox.server import running_sandbox

    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(SENDGRID_BATCH))
    landing = tmp_path / "landing"
    assert main(["feedback", "--events", str(batch), "--landing", str(landing)]) == 0
    written = capsys.readouterr().out.strip()
    assert written.startswith(str(landing / "email_engagement" / "sendgrid-events-"))
    store = MailStore(tmp_path / "sandbox" / "smtp")
    _store_message(store, "welcome.ccc.1@attiva", "complain.me@example.it")
    store.close()
    with running_sandbox(tmp_path / "sandbox") as url:  # the ESP's event feed
        monkeypatch.setenv("ATTIVA_ESP_EVENTS_URL", f"{url}/_sandbox/mail/events")
        assert main(["feedback", "--landing", str(landing)]) == 0
        lines = Path(capsys.readouterr().out.strip()).read_text().splitlines()
        assert {json.loads(line)["event_type"] for line in lines} >= {"delivered", "complaint"}
        assert main(["feedback", "--landing", str(landing)]) == 0
        assert capsys.readouterr().out.strip() == "no new engagement events"
    # the feed unreachable: said, and nothing landed
    assert main(["feedback", "--landing", str(landing)]) == 1
    assert f"the ESP event feed {url}/_sandbox/mail/events could not be reached" in capsys.readouterr().err
