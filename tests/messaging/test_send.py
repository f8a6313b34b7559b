"""Triggered messaging end to end on a real DuckDB file and real SMTP: planned once, decided at
send time (exit, expiry, consent, suppression, quiet hours, caps by priority, holdout),
rendered, sent exactly once."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, time, timedelta
from email.utils import parsedate_to_datetime

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activations.messaging import actions
from activations.messaging.channels import SmtpChannel
from activations.messaging.ledger import ensure_ledger, in_holdout
from activations.messaging.policy import Caps, Coupon, QuietHours, Settings, Step, Trigger
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from sandbox.smtp import running_smtp

pytestmark = pytest.mark.xdist_group("messaging_send")

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 13:00 in Rome
NO_CAPS = Settings(caps=Caps(None, None), quiet_hours=None)
COLUMNS = ("trigger_key", "customer_id", "occurred_at", "exit_reason", "product_name", "discount_pct",
           "current_price", "product_id")


def make_trigger(campaign="favourite_on_promotion", template="favourite_on_promotion", *, priority=50, holdout=0.0,
                 delay=timedelta(0), quiet: QuietHours | None = None, consent="email_marketable", marketing=True,
                 coupon: Coupon | None = None, relation="triggers.trg_test", expires=timedelta(days=2)) -> Trigger:
    return Trigger(name=f"trg_{campaign}", relation=relation, campaign=campaign, channel="email", consent=consent,
                   marketing=marketing, priority=priority, holdout=holdout, expires_after=expires,
                   quiet_hours=quiet, steps=(Step(1, template, delay, coupon),), columns=COLUMNS)


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    state = tmp_path_factory.mktemp("smtp")
    with running_smtp(state) as (host, port):
        yield host, port, state


@pytest.fixture
def mailbox(smtp, tmp_path):
    """The SMTP channel, and what the server received since this test started."""
    host, port, _ = smtp
    channel = SmtpChannel(host, port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
    seen_before = _received(smtp)
    yield channel, lambda: _received(smtp)[len(seen_before):]
    channel.close()


def _received(smtp) -> list[email.message.EmailMessage]:
    """Every message the sandbox SMTP server stored (one JSON line each), parsed."""
    store = smtp[2] / "smtp" / "messages.jsonl"
    lines = store.read_text(encoding="utf-8").splitlines() if store.exists() else []
    return [email.message_from_string(json.loads(line)["raw"].replace("\r\n", "\n"), policy=email.policy.default)
            for line in lines]


@pytest.fixture
def warehouse(tmp_path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    create_tables(con)
    yield con
    con.close()


def create_tables(con) -> None:
    """What messaging reads: the customers, products, recommendations and one trigger table."""
    con.execute("create schema marts; create schema triggers")
    con.execute("""create table marts.customers (customer_id varchar, email varchar, first_name varchar,
                   last_name varchar, city varchar, country varchar, timezone varchar, email_marketable boolean)""")
    con.execute("create table marts.products (product_id varchar, product_name varchar, price double)")
    con.execute("""create table marts.customer_recommendations (customer_id varchar, recommendation_rank integer,
                   product_id varchar, score double, reason varchar)""")
    con.execute("insert into marts.products values ('P1', 'Miscela Classica', 7.9), ('P2', 'Moka', 29.0)")
    con.execute("""create table triggers.trg_test (trigger_key varchar, customer_id varchar, occurred_at timestamp,
                   exit_reason varchar, product_name varchar, discount_pct double, current_price double,
                   product_id varchar)""")


def add_customer(con, customer_id, *, consent=True, timezone="Europe/Rome", first_name="Giulia", email_address=None):
    con.execute("insert into marts.customers values (?, ?, ?, 'Rossi', 'Bologna', 'IT', ?, ?)",
                [customer_id, email_address or f"{customer_id}@example.it", first_name, timezone, consent])
    con.execute("insert into marts.customer_recommendations values (?, 1, 'P2', 1.0, 'goes with')", [customer_id])


def add_occurrence(con, key, customer_id, *, at=NOW - timedelta(hours=1), exit_reason=None, table="trg_test"):
    con.execute(f"insert into triggers.{table} values (?, ?, ?, ?, 'Miscela Classica', 20, 6.32, 'P1')",
                [key, customer_id, at.replace(tzinfo=None), exit_reason])


def ledger(con) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {(c, k): (s, r) for c, k, s, r in con.execute(
        "select campaign, trigger_key, state, reason from activation.message_ledger").fetchall()}


def test_a_due_message_is_rendered_and_sent_once(warehouse, mailbox):
    channel, received = mailbox
    add_customer(warehouse, "c1", first_name="{{ 7*7 }}<script>")
    add_occurrence(warehouse, "k1", "c1")
    trigger = make_trigger()
    for _ in range(3):  # evaluating again and again never sends again
        run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
    [message] = received()
    assert message["To"].addresses[0].addr_spec == "c1@example.it"
    assert message["X-Attiva-Message-Id"] and "List-Unsubscribe" in message
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Miscela Classica" in text and "20" in text
    # The customer's name is data: shown as typed, never evaluated, escaped in HTML.
    assert "{{ 7*7 }}" in text and "49" not in text.split("Miscela")[0]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "utm_campaign=favourite_on_promotion" in html
    assert ledger(warehouse) == {("favourite_on_promotion", "k1"): ("sent", None)}


def test_the_date_header_is_the_pass_clock_so_a_pinned_as_of_dates_the_mail(warehouse, mailbox, smtp):
    """A replay or the simulator pins the pass to another time than the wall clock's: the mail says so, and the
    sandbox keeps it (its simulated readers answer the hour the mail was sent)."""
    channel, received = mailbox
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "k1", "c1")
    run_pass(warehouse, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW)
    [message] = received()
    assert NOW <= parsedate_to_datetime(message["Date"]) < NOW + timedelta(minutes=1)
    stored = json.loads((smtp[2] / "smtp" / "messages.jsonl").read_text().splitlines()[-1])
    assert stored["date"] == message["Date"].datetime.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_exit_expiry_and_consent_are_checked_at_send_time(warehouse, mailbox):
    channel, received = mailbox
    for customer in ("bought", "stale", "revoked", "ok"):
        add_customer(warehouse, customer)
    # Occurrences at 09:00, each step due 2 h later; the `stale` campaign's steps expire 1 h after that.
    warehouse.execute("create table triggers.trg_stale as select * from triggers.trg_test")
    trigger = make_trigger(delay=timedelta(hours=2))
    stale = make_trigger("stale", "favourite_on_promotion", delay=timedelta(hours=2), expires=timedelta(hours=1),
                         relation="triggers.trg_stale")
    for key in ("k-bought", "k-revoked", "k-ok"):
        add_occurrence(warehouse, key, key.removeprefix("k-"), at=NOW - timedelta(hours=3))
    add_occurrence(warehouse, "k-stale", "stale", at=NOW - timedelta(hours=3), table="trg_stale")
    # Planned at 10:00 (nothing due yet); the world changes; the next pass comes at 13:00.
    run_pass(warehouse, [trigger, stale], {"email": channel}, Templates(), NO_CAPS, NOW - timedelta(hours=2))
    assert received() == []
    warehouse.execute("update triggers.trg_test set exit_reason = 'ordered' where trigger_key = 'k-bought'")
    warehouse.execute("update marts.customers set email_marketable = false where customer_id = 'revoked'")
    run_pass(warehouse, [trigger, stale], {"email": channel}, Templates(), NO_CAPS, NOW + timedelta(hours=1))
    states = ledger(warehouse)
    assert states[("favourite_on_promotion", "k-bought")] == ("suppressed", "exited: ordered")
    assert states[("stale", "k-stale")] == ("suppressed", "expired before it could be sent")
    assert states[("favourite_on_promotion", "k-revoked")] == ("suppressed", "no consent at send time")
    assert states[("favourite_on_promotion", "k-ok")][0] == "sent"
    assert [m["To"].addresses[0].addr_spec for m in received()] == ["ok@example.it"]


def test_quiet_hours_wait_for_the_customers_morning(warehouse, mailbox):
    channel, received = mailbox
    add_customer(warehouse, "rome")  # 13:00 local: fine
    add_customer(warehouse, "tokyo", timezone="Asia/Tokyo")  # 21:00 local: quiet until 08:00
    add_occurrence(warehouse, "k-rome", "rome")
    add_occurrence(warehouse, "k-tokyo", "tokyo")
    trigger = make_trigger(quiet=QuietHours(time(21), time(8)))
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
    assert [m["To"].addresses[0].addr_spec for m in received()] == ["rome@example.it"]
    due_at = warehouse.execute("select due_at from activation.message_ledger where trigger_key = 'k-tokyo'").fetchone()[0]
    assert due_at == datetime(2026, 11, 20, 23, 0)  # 08:00 in Tokyo, in UTC
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW + timedelta(hours=11))
    assert sorted(m["To"].addresses[0].addr_spec for m in received()) == ["rome@example.it", "tokyo@example.it"]


def test_caps_let_the_higher_priority_message_win(warehouse, mailbox):
    channel, received = mailbox
    warehouse.execute("create table triggers.trg_other as select * from triggers.trg_test")
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "low", "c1")
    add_occurrence(warehouse, "high", "c1", table="trg_other")
    low = make_trigger("browse", "favourite_on_promotion", priority=10)
    high = make_trigger("favourite", "favourite_on_promotion", priority=90, relation="triggers.trg_other")
    receipt = make_trigger("receipt", "favourite_on_promotion", marketing=False, relation="triggers.trg_other")
    caps = Settings(caps=Caps(per_day=1, per_week=3), quiet_hours=None)
    run_pass(warehouse, [low, high, receipt], {"email": channel}, Templates(), caps, NOW)
    states = ledger(warehouse)
    assert states[("favourite", "high")] == ("sent", None)
    assert states[("browse", "low")][0] == "suppressed" and "frequency cap" in states[("browse", "low")][1]
    assert states[("receipt", "high")] == ("sent", None)  # transactional: not capped
    assert len(received()) == 2


def test_the_holdout_is_deterministic_and_never_sent(warehouse, mailbox):
    channel, received = mailbox
    for i in range(200):
        add_customer(warehouse, f"c{i:03d}")
        add_occurrence(warehouse, f"k{i:03d}", f"c{i:03d}")
    trigger = make_trigger(holdout=0.3)
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
    held = {k for (c, k), (s, r) in ledger(warehouse).items() if s == "held_out"}
    assert 40 <= len(held) <= 80, len(held)
    sent_to = {m["To"].addresses[0].addr_spec.split("@")[0] for m in received()}
    assert not sent_to & {f"c{k[1:]}" for k in held} and len(sent_to) == 200 - len(held)
    # Computed again from scratch, for the same customers and campaign: the same people.
    again = in_holdout("favourite_on_promotion", pl.Series([f"c{i:03d}" for i in range(200)]), 0.3)
    assert {f"k{i:03d}" for i, h in enumerate(again.to_list()) if h} == held


def test_a_coupon_is_issued_once_and_shown(warehouse, mailbox):
    channel, received = mailbox
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "k1", "c1")
    trigger = make_trigger("birthday", "birthday", coupon=Coupon(15, 14))
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
    [(code,)] = warehouse.execute("select code from activation.coupons").fetchall()
    assert code in received()[0].get_body(("plain",)).get_content()
    assert warehouse.execute("select coupon_code from activation.message_ledger").fetchone()[0] == code


def test_the_suppression_list_wins_over_consent(warehouse, mailbox):
    import hashlib

    channel, received = mailbox
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "k1", "c1")
    ensure_ledger(warehouse)
    warehouse.execute("insert into activation.suppression_list values (?, 'complaint', now())",
                      [hashlib.sha256(b"c1@example.it").hexdigest()])
    run_pass(warehouse, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW)
    assert received() == []
    assert ledger(warehouse)[("favourite_on_promotion", "k1")] == ("suppressed", "on the suppression list")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories=st.lists(st.lists(st.booleans(), min_size=1, max_size=4), min_size=1, max_size=6),
       holdout=st.sampled_from([0.0, 0.5]), quiet=st.booleans(), per_day=st.sampled_from([None, 1]))
def test_no_message_is_ever_sent_without_consent(tmp_path_factory, smtp, histories, holdout, quiet, per_day):
    """Random consent histories (one value per pass) and policies: every message that reached the
    SMTP server went to someone whose consent was true at the moment of that pass."""
    folder = tmp_path_factory.mktemp("prop")
    con = duckdb.connect(str(folder / "w.duckdb"))
    create_tables(con)
    ensure_ledger(con)
    channel = SmtpChannel(*smtp[:2], from_email="ciao@emporionove.it", from_name="Emporio Nove")
    trigger = Trigger("trg_p", "triggers.trg_test", f"prop{folder.name}", "email", "email_marketable", True, 50,
                      holdout, timedelta(days=5), QuietHours(time(21), time(8)) if quiet else None,
                      (Step(1, "favourite_on_promotion", timedelta(0)), Step(2, "favourite_on_promotion",
                                                                             timedelta(hours=6))), COLUMNS)
    policy = Settings(caps=Caps(per_day, None), quiet_hours=None)
    rounds = max(len(h) for h in histories)
    for i, history in enumerate(histories):
        con.execute("insert into marts.customers values (?, ?, 'A', 'B', 'C', 'IT', 'Europe/Rome', ?)",
                    [f"p{i}", f"p{i}.{folder.name}@example.it", history[0]])
        add_occurrence(con, f"k{i}", f"p{i}", at=NOW - timedelta(hours=1))
    allowed: set[tuple[str, int]] = set()
    for r in range(rounds):
        at = NOW + timedelta(hours=4 * r)
        for i, history in enumerate(histories):
            con.execute("update marts.customers set email_marketable = ? where customer_id = ?",
                        [history[min(r, len(history) - 1)], f"p{i}"])
            if history[min(r, len(history) - 1)]:
                allowed.add((f"p{i}", r))
        before = {m for m in _ids(con)}
        run_pass(con, [trigger], {"email": channel}, Templates(), policy, at)
        for customer in {c for c, mid in _ids(con) - before}:
            assert (customer, r) in allowed, f"{customer} got a message in pass {r} without consent"
    channel.close()
    con.close()


def _ids(con) -> set[tuple[str, str]]:
    return set(con.execute("select customer_id, message_id from activation.message_ledger where state = 'sent'")
               .fetchall())


def test_templates_reading_missing_payload_fail_at_load(tmp_path):
    from activations.messaging.templates import TemplateError
    from activations.messaging.validate import validate_templates

    trigger = make_trigger()
    narrow = Trigger(**{**trigger.__dict__, "columns": ("trigger_key", "customer_id", "occurred_at")})
    with pytest.raises(TemplateError, match="favourite_on_promotion"):
        validate_templates([narrow], Templates())
    validate_templates([trigger], Templates())


def test_a_batch_mixing_messages_with_and_without_coupons(warehouse, mailbox):
    """Most rows of a batch carry no coupon; the ones after the first hundred do (lower priority)."""
    channel, received = mailbox
    warehouse.execute("create table triggers.trg_other as select * from triggers.trg_test")
    for i in range(150):
        add_customer(warehouse, f"c{i:03d}")
        add_occurrence(warehouse, f"plain{i:03d}", f"c{i:03d}")
        add_occurrence(warehouse, f"gift{i:03d}", f"c{i:03d}", table="trg_other")
    plain = make_trigger(priority=90)
    gift = make_trigger("birthday", "birthday", priority=10, coupon=Coupon(15, 14), relation="triggers.trg_other")
    report = run_pass(warehouse, [plain, gift], {"email": channel}, Templates(), NO_CAPS, NOW)
    assert report.sent == 300 and len(received()) == 300
    assert warehouse.execute("select count(distinct coupon_code) from activation.message_ledger "
                             "where campaign = 'birthday' and state = 'sent'").fetchone()[0] == 150


def test_a_message_of_unknown_outcome_counts_against_the_caps(warehouse, mailbox):
    # A pass killed mid-send leaves a message unknown: it may have reached the person, so it counts.
    channel, received = mailbox
    warehouse.execute("create table triggers.trg_other as select * from triggers.trg_test")
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "high", "c1", table="trg_other")
    high = make_trigger("favourite", "favourite_on_promotion", priority=90, relation="triggers.trg_other")
    caps = Settings(caps=Caps(per_day=1, per_week=3), quiet_hours=None)
    run_pass(warehouse, [high], {"email": channel}, Templates(), caps, NOW)
    warehouse.execute("""update activation.message_ledger set state = 'unknown', sending_at = sent_at, sent_at = null
                         where campaign = 'favourite'""")
    add_occurrence(warehouse, "low", "c1")
    low = make_trigger("browse", "favourite_on_promotion", priority=10)
    run_pass(warehouse, [high, low], {"email": channel}, Templates(), caps, NOW + timedelta(hours=1))
    states = ledger(warehouse)
    assert states[("browse", "low")][0] == "suppressed" and "frequency cap" in states[("browse", "low")][1]
    assert len(received()) == 1


def test_a_refused_login_stops_its_channel_keeps_every_message_and_the_rest_goes_on(warehouse, mailbox, tmp_path):
    """Wrong credentials are the configuration's fault: the first refusal stops that channel for the pass
    (no login attempt per message), every one of its messages stays planned, other channels send."""
    import dataclasses

    from activations.destinations.base import Secret

    channel, received = mailbox
    for i in range(12):
        add_customer(warehouse, f"c{i}")
        add_occurrence(warehouse, f"k{i}", f"c{i}")
    warehouse.execute("create table triggers.trg_crm as select * from triggers.trg_test")
    other = dataclasses.replace(make_trigger("welcome", relation="triggers.trg_crm"), channel="crm")
    with running_smtp(tmp_path / "authed", username="aurora", password="right-pw") as (host, port):
        wrong = SmtpChannel(host, port, username="aurora", password=Secret("wrong-pw"), pool_size=4,
                             from_email="ciao@emporionove.it")
        report = run_pass(warehouse, [make_trigger(), other], {"email": wrong, "crm": channel}, Templates(),
                          NO_CAPS, NOW)
        wrong.close()
        assert set(report.stopped) == {"email"} and "535" in report.stopped["email"]
        assert "wrong-pw" not in str(report)
        assert set(report.stopped_campaigns([make_trigger(), other])) == {"favourite_on_promotion"}
        rows = warehouse.execute("""select state, count(*), sum(attempts) from activation.message_ledger
                                    where campaign = 'favourite_on_promotion' group by state""").fetchall()
        # Only the messages already in flight (one per sending thread, 8) tried; none marked failed or sent.
        assert rows == [("planned", 12, rows[0][2])] and 1 <= rows[0][2] <= 8
        assert len(received()) == 12  # the other campaign's messages, on the working channel
        # Fixed credentials: the next pass sends every held message, once.
        right = SmtpChannel(host, port, username="aurora", password=Secret("right-pw"), from_email="ciao@emporionove.it")
        again = run_pass(warehouse, [make_trigger(), other], {"email": right, "crm": channel}, Templates(),
                         NO_CAPS, NOW + timedelta(minutes=5))
        right.close()
    assert again.stopped == {} and again.outcomes["favourite_on_promotion"] == {"sent": 12}
    assert warehouse.execute("select count(*) from activation.message_ledger where state = 'sent'").fetchone()[0] == 24


def test_recommendation_links_come_from_the_configured_product_url(warehouse, mailbox, tmp_path):
    """The shop's product page is configuration (messaging.yml product_url), not code; without it a
    recommendation shows its name and price, and no link."""
    import shutil
    from pathlib import Path

    folder = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates", folder)
    (folder / "recs").mkdir()
    (folder / "recs" / "subject.txt.j2").write_text("Per te")
    (folder / "recs" / "body.txt.j2").write_text('{% include "_layout/recommendations.txt.j2" %}\n'
                                                  '{% include "_layout/footer.txt.j2" %}')
    (folder / "recs" / "body.html.j2").write_text('{% extends "_layout/base.html.j2" %}{% block content %}'
                                                   '{% include "_layout/recommendations.html.j2" %}{% endblock %}')
    channel, received = mailbox
    warehouse.execute("create table triggers.trg_other as select * from triggers.trg_test")
    for key, customer, table in (("k1", "c1", "trg_test"), ("k2", "c2", "trg_other")):
        add_customer(warehouse, customer)
        add_occurrence(warehouse, key, customer, table=table)
    linked = Settings(caps=Caps(None, None), quiet_hours=None, product_url="https://caffe.example/prodotti/{product_id}")
    run_pass(warehouse, [make_trigger("with_link", "recs")], {"email": channel}, Templates(folder), linked, NOW)
    run_pass(warehouse, [make_trigger("without", "recs", relation="triggers.trg_other")], {"email": channel},
             Templates(folder), NO_CAPS, NOW)
    with_link, without = (m.get_body(("plain",)).get_content() for m in received())
    assert "Moka" in with_link and "https://caffe.example/prodotti/P2?utm_source=attiva" in with_link
    assert "Moka" in without and "/P2" not in without and "None" not in without


def test_a_paused_campaign_sends_nothing_and_its_messages_go_out_after_the_resume(warehouse, mailbox):
    channel, received = mailbox
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "k1", "c1")
    trigger = make_trigger()
    ensure_ledger(warehouse)
    assert actions.set_paused(warehouse, trigger.campaign, True, "mara", NOW - timedelta(hours=2))
    assert not actions.set_paused(warehouse, trigger.campaign, True, "mara", NOW)  # already paused: nothing recorded
    report = run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
    assert received() == []
    assert ledger(warehouse) == {(trigger.campaign, "k1"): ("planned", None)}  # not lost, not sent: waiting
    assert "none sent, paused by mara at 2026-11-20 10:00 UTC" in str(report)
    assert actions.set_paused(warehouse, trigger.campaign, False, "ada", NOW + timedelta(minutes=5))
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW + timedelta(minutes=10))
    [message] = received()
    assert message["To"].addresses[0].addr_spec == "c1@example.it"
    assert ledger(warehouse)[(trigger.campaign, "k1")][0] == "sent"
    assert [(a["action"], a["actor"]) for a in actions.history(warehouse, trigger.campaign)] == [
        ("resume", "ada"), ("pause", "mara")]


def test_a_message_whose_expiry_passes_while_paused_is_suppressed_after_the_resume(warehouse, mailbox):
    channel, received = mailbox
    add_customer(warehouse, "c1")
    add_occurrence(warehouse, "k1", "c1")
    trigger = make_trigger(expires=timedelta(hours=2))
    ensure_ledger(warehouse)
    actions.set_paused(warehouse, trigger.campaign, True, "mara", NOW - timedelta(hours=2))
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
    actions.set_paused(warehouse, trigger.campaign, False, "mara", NOW + timedelta(hours=3))
    run_pass(warehouse, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW + timedelta(hours=3))
    assert received() == []
    assert ledger(warehouse)[(trigger.campaign, "k1")] == ("suppressed", "expired before it could be sent")
