"""Journeys that branch, on a real DuckDB file, the sandbox's FCM and real SMTP over loopback: a push after 1 h,
then an email after 4 h unless the customer clicked the push or bought; each step by its own channel with its
own consent; the ledger records the path each customer took (sent, skipped with what they did, suppressed);
a step waiting on clicks stays planned while the engagement it needs is not built; a journey declared wrong
is refused naming the field."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from activations.manifest import load_manifest
from activations.messaging import status
from activations.messaging.policy import PolicyError, Step, Trigger, triggers
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from tests.messaging.test_fallback import CHANNELS, add, both, email  # noqa: F401
from tests.messaging.test_fcm import COLUMNS, NO_CAPS, NOW, channel, device, fresh, sandbox, state, warehouse  # noqa: F401
from tests.messaging.test_send import _received, smtp  # noqa: F401

pytestmark = pytest.mark.xdist_group("messaging_fcm")

OCCURRED = NOW - timedelta(hours=1)  # when `add` dates each cart


def journey() -> Trigger:
    """The cart: a push after 1 h; an email after 4 h unless they clicked the push or bought."""
    return Trigger(name="trg_push", relation="triggers.trg_push", campaign="cart_journey",
                   channel="push", consent="consent_push", marketing=True, priority=85, holdout=0.0,
                   expires_after=timedelta(days=1), quiet_hours=None, columns=COLUMNS,
                   steps=(Step(1, "abandoned_cart_push", timedelta(hours=1)),
                          Step(2, "abandoned_cart", timedelta(hours=4), channel="email", consent="email_marketable",
                               unless=("clicked", "bought"))))


@pytest.fixture
def shop(both):  # noqa: F811
    """test_fallback's warehouse with the orders and the message outcomes (dbt's measurement view, as a table)."""
    both.execute("create table marts.orders (order_id varchar, customer_id varchar, ordered_at timestamp, "
                 "status varchar)")
    both.execute("create schema measurement")
    both.execute("create table measurement.message_outcomes (message_id varchar, opened boolean, clicked boolean)")
    return both


def path(con) -> dict[str, list[tuple]]:
    """customer -> [(step, channel, state, reason)], the path each took."""
    found: dict[str, list[tuple]] = {}
    for customer, step, ch, st, reason in con.execute(
            "select customer_id, step, channel, state, reason from activation.message_ledger order by 1, 2").fetchall():
        found.setdefault(customer, []).append((step, ch, st, reason))
    return found


def test_a_journey_switches_channel_and_branches_on_clicks_and_orders(sandbox, shop, email):  # noqa: F811
    mail, received = email
    for customer, n in (("quiet", 1), ("clicker", 2), ("buyer", 3)):
        add(shop, customer, device(n))
    add(shop, "no_app")  # no device token: no push, but the email step is theirs
    channels = {"push": channel(sandbox), "email": mail}

    first = run_pass(shop, [journey()], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=1, minutes=5))
    assert first.outcomes["cart_journey"] == {"sent": 3, "suppressed": 1}
    assert sorted(m["token"] for m in state(sandbox)["messages"]) == [device(1), device(2), device(3)]
    assert received() == []  # the email step is not due yet

    # Between the steps: one clicks the push (the app reports message_clicked with its id), one buys.
    [(clicked_id,)] = shop.execute("select message_id from activation.message_ledger "
                                   "where customer_id = 'clicker' and step = 1").fetchall()
    shop.execute("insert into measurement.message_outcomes values (?, true, true)", [clicked_id])
    shop.execute("insert into marts.orders values ('O1', 'buyer', ?, 'completed'), ('O2', 'quiet', ?, 'cancelled')",
                 [(OCCURRED + timedelta(hours=2)).replace(tzinfo=None)] * 2)  # a cancelled order is no purchase

    second = run_pass(shop, [journey()], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=4, minutes=5))
    assert second.outcomes["cart_journey"] == {"sent": 2, "skipped": 2}
    assert sorted(m["To"].addresses[0].addr_spec for m in received()) == ["no_app@example.it", "quiet@example.it"]
    taken = path(shop)
    assert taken["quiet"] == [(1, "push", "sent", None), (2, "email", "sent", None)]
    assert taken["clicker"] == [(1, "push", "sent", None), (2, "email", "skipped", "branch not taken: clicked")]
    assert taken["buyer"] == [(1, "push", "sent", None), (2, "email", "skipped", "branch not taken: bought")]
    assert taken["no_app"][0][:3] == (1, "push", "suppressed") and "no push token" in taken["no_app"][0][3]
    assert taken["no_app"][1] == (2, "email", "sent", None)

    listed = status.campaigns_table(status.campaigns(shop))
    assert "skipped" in listed.splitlines()[0].split()
    assert "cart_journey skipped: 1 branch not taken: bought, 1 branch not taken: clicked" in listed
    _, rows = status.why(shop, "clicker")
    assert [r["explanation"] for r in rows][1] == "skipped, not sent by email: branch not taken: clicked"
    for ch in channels.values():
        ch.close()


def test_a_step_waiting_on_clicks_stays_planned_until_engagement_is_measured(sandbox, both, email):  # noqa: F811
    mail, received = email
    add(both, "quiet", device(1))
    both.execute("create table marts.orders (order_id varchar, customer_id varchar, ordered_at timestamp, "
                 "status varchar)")
    channels = {"push": channel(sandbox), "email": mail}
    report = run_pass(both, [journey()], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=4, minutes=5))
    # The push goes; the email, which must know whether the push was clicked, waits for measurement.message_outcomes.
    assert report.outcomes["cart_journey"]["sent"] == 1
    assert report.outcomes["cart_journey"]["waiting (its branch needs measurement.message_outcomes)"] == 1
    assert [r[2] for r in path(both)["quiet"]] == ["sent", "planned"] and received() == []
    for ch in channels.values():
        ch.close()


def _journey_policy(**step2) -> dict:
    return {"channel": "push", "consent": "consent_push", "steps": [
        {"template": "abandoned_cart_push", "delay": "1h"},
        {"template": "abandoned_cart", "delay": "4h", **step2}]}


@pytest.mark.parametrize(("step2", "field", "message"), [
    ({"channel": "pigeon", "consent": "none"}, r"steps\[1\].channel", "'pigeon' is not in channels.yml"),
    ({"channel": "email"}, r"steps\[1\].consent", "declare the consent 'email' needs"),
    ({"channel": "email", "consent": "likes_mail"}, r"steps\[1\].consent", "not a column"),
    ({"consent": "email_marketable"}, r"steps\[1\].consent", "goes with a channel of its own"),
    ({"unless": ["replied"]}, r"steps\[1\].unless", "'replied' is none of opened, clicked, bought, stopped"),
    ({"when": ["in_audience:aud_nope"]}, r"steps\[1\].when", "in_audience:aud_champions"),
    ({"when": ["clicked"], "delay": 0}, r"steps\[1\].delay", "waits until its delay"),
])
def test_a_journey_declared_wrong_is_refused_naming_the_field(step2, field, message):
    manifest = copy.deepcopy(load_manifest())
    manifest["nodes"]["model.attiva.trg_abandoned_cart_push"]["config"]["meta"]["messaging"] = _journey_policy(**step2)
    with pytest.raises(PolicyError, match=f"trg_abandoned_cart_push.*meta.messaging.{field}.*{message}"):
        triggers(manifest, CHANNELS, {"customer_id", "consent_push", "email_marketable"})


def test_the_first_step_cannot_wait_on_an_earlier_message_nor_a_journey_have_a_fallback():
    manifest = copy.deepcopy(load_manifest())
    node = manifest["nodes"]["model.attiva.trg_abandoned_cart_push"]
    node["config"]["meta"]["messaging"] = {**_journey_policy(), "steps": [
        {"template": "abandoned_cart_push", "delay": "1h", "unless": ["clicked"]}]}
    with pytest.raises(PolicyError, match=r"steps\[0\].unless.*no earlier message"):
        triggers(manifest, CHANNELS)
    node["config"]["meta"]["messaging"] = {
        "channel": "push", "consent": "consent_push", "fallback": {"channel": "email", "consent": "email_marketable"},
        "steps": [{"template": "abandoned_cart_push", "delay": "1h", "fallback_template": "abandoned_cart"},
                  {"template": "abandoned_cart", "delay": "4h", "fallback_template": "abandoned_cart",
                   "channel": "sms", "consent": "none"}]}
    with pytest.raises(PolicyError, match=r"steps\[1\].channel.*no campaign fallback"):
        triggers(manifest, CHANNELS)


def test_a_journey_declared_right_is_read_with_each_steps_channel():
    manifest = copy.deepcopy(load_manifest())
    manifest["nodes"]["model.attiva.trg_abandoned_cart_push"]["config"]["meta"]["messaging"] = _journey_policy(
        channel="email", consent="email_marketable", unless=["clicked", "bought", "clicked"])
    [trigger] = [t for t in triggers(manifest, CHANNELS) if t.campaign == "abandoned_cart_push"]
    assert trigger.channels == ("push", "email")
    first, second = trigger.steps
    assert (trigger.step_channel(first), trigger.step_consent(first)) == ("push", "consent_push")
    assert (trigger.step_channel(second), trigger.step_consent(second)) == ("email", "email_marketable")
    assert second.unless == ("clicked", "bought")
    manifest["nodes"]["model.attiva.trg_abandoned_cart_push"]["config"]["meta"]["messaging"] = _journey_policy(
        when=["clicked", "in_audience:aud_champions"])
    [trigger] = [t for t in triggers(manifest, CHANNELS) if t.campaign == "abandoned_cart_push"]
    second = trigger.steps[1]
    assert second.when == ("clicked", "in_audience:aud_champions")
    assert second.audiences == (("in_audience:aud_champions", "audiences.aud_champions"),)
    assert trigger.due_after(second) == timedelta(hours=1)  # looked at from the step before, waits until 4 h


def test_a_step_is_skipped_for_a_customer_who_replied_stop(sandbox, shop, email):  # noqa: F811
    from dataclasses import replace

    from activations.messaging.feedback import phone_sha256

    mail, received = email
    add(shop, "stopper", device(1))
    add(shop, "quiet", device(2))
    shop.execute("update marts.customers set phone = '+39 333 111 2222' where customer_id = 'stopper'")
    trigger = journey()
    trigger = replace(trigger, steps=(trigger.steps[0], replace(trigger.steps[1], unless=("stopped",))))
    channels = {"push": channel(sandbox), "email": mail}
    run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=1, minutes=5))
    # Their STOP to another campaign's SMS, recorded as the Twilio webhook records it.
    shop.execute("insert into activation.sms_suppression_list values (?, 'STOP', ?)",
                 [phone_sha256("+393331112222"), NOW.replace(tzinfo=None)])
    run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=4, minutes=5))
    taken = path(shop)
    assert taken["stopper"][1] == (2, "email", "skipped", "branch not taken: stopped")
    assert taken["quiet"][1] == (2, "email", "sent", None)
    assert [m["To"].addresses[0].addr_spec for m in received()] == ["quiet@example.it"]
    for ch in channels.values():
        ch.close()


def waiting_journey(**step2) -> Trigger:
    """The cart: a push after 1 h; then, as soon as they click it, an email, if they do within 4 h."""
    trigger = journey()
    from dataclasses import replace
    return replace(trigger, steps=(trigger.steps[0], replace(trigger.steps[1], **{"unless": (), **step2})))


def test_a_step_that_waits_for_a_click_goes_out_as_soon_as_it_is_seen_and_times_out_otherwise(
        sandbox, shop, email):  # noqa: F811
    mail, received = email
    add(shop, "clicker", device(1))
    add(shop, "quiet", device(2))
    trigger = waiting_journey(when=("clicked",))
    channels = {"push": channel(sandbox), "email": mail}
    first = run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=1, minutes=5))
    assert first.outcomes["cart_journey"]["sent"] == 2
    assert first.outcomes["cart_journey"]["waiting for what its step waits for (when)"] == 2
    [(clicked_id,)] = shop.execute("select message_id from activation.message_ledger "
                                   "where customer_id = 'clicker' and step = 1").fetchall()
    shop.execute("insert into measurement.message_outcomes values (?, true, true)", [clicked_id])
    # The next pass, 5 minutes later, long before the 4 h: the clicker's email goes.
    run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=1, minutes=10))
    assert [m["To"].addresses[0].addr_spec for m in received()] == ["clicker@example.it"]
    assert [r[2] for r in path(shop)["quiet"]] == ["sent", "planned"]
    # 4 h after the cart, no click from the other: their step is skipped, saying why.
    run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=4, minutes=5))
    taken = path(shop)
    assert taken["clicker"][1] == (2, "email", "sent", None)
    assert taken["quiet"][1] == (2, "email", "skipped", "branch not taken: waited for clicked until it timed out")
    assert len(received()) == 1
    for ch in channels.values():
        ch.close()


def test_a_step_branches_on_an_audience_and_waits_while_the_audience_is_not_built(sandbox, shop, email):  # noqa: F811
    mail, received = email
    add(shop, "vip", device(1))
    add(shop, "quiet", device(2))
    trigger = waiting_journey(unless=("in_audience:aud_champions",),
                              audiences=(("in_audience:aud_champions", "audiences.aud_champions"),))
    channels = {"push": channel(sandbox), "email": mail}
    report = run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=4, minutes=5))
    assert report.outcomes["cart_journey"]["waiting (its branch needs audiences.aud_champions)"] == 2
    assert received() == []
    shop.execute("create schema audiences")
    shop.execute("create table audiences.aud_champions as select 'vip' as customer_id")
    run_pass(shop, [trigger], channels, Templates(), NO_CAPS, OCCURRED + timedelta(hours=4, minutes=10))
    taken = path(shop)
    assert taken["vip"][1] == (2, "email", "skipped", "branch not taken: in_audience:aud_champions")
    assert taken["quiet"][1] == (2, "email", "sent", None)
    assert [m["To"].addresses[0].addr_spec for m in received()] == ["quiet@example.it"]
    for ch in channels.values():
        ch.close()
