"""The customer's channel preference and fallback, on a real DuckDB file, the sandbox's FCM and real SMTP over
loopback: push where the app is installed (a device token and push consent), else the email, checked against the
email's consent and suppression list, under the same caps (one message per occurrence, whichever channel), with
the channel and template actually used in the ledger; and a fallback declared wrong is refused naming the field."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from activations.manifest import load_manifest
from activations.messaging import status
from activations.messaging.channels import SmtpChannel
from activations.messaging.feedback import email_sha256
from activations.messaging.ledger import ensure_ledger
from activations.messaging.policy import Caps, Fallback, PolicyError, Settings, Step, Trigger, triggers
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from tests.messaging.test_fcm import COLUMNS, NOW, channel, device, fresh, sandbox, state, warehouse  # noqa: F401
from tests.messaging.test_send import _received, smtp  # noqa: F401

pytestmark = pytest.mark.xdist_group("messaging_fcm")

CAPS = Settings(caps=Caps(per_day=1, per_week=3), quiet_hours=None)
CHANNELS = {"email", "sales_task", "sms", "push", "on_site"}


def push_or_email(**changes) -> Trigger:
    return Trigger(name="trg_abandoned_cart_push", relation="triggers.trg_push", campaign="abandoned_cart_push",
                   channel="push", consent="consent_push", marketing=True, priority=85, holdout=0.0,
                   expires_after=timedelta(days=1), quiet_hours=None, columns=COLUMNS,
                   steps=(Step(1, "abandoned_cart_push", timedelta(0), fallback_template="abandoned_cart"),),
                   fallback=Fallback("email", "email_marketable"), **changes)


@pytest.fixture
def both(warehouse):  # noqa: F811
    """test_fcm's warehouse, whose customers also have an email consent, and a second trigger table."""
    warehouse.execute("alter table marts.customers add column email_marketable boolean")
    warehouse.execute("create table triggers.trg_other as select * from triggers.trg_push")
    return warehouse


def add(con, customer_id: str, token: str | None = None, *, push_ok: bool = True, email_ok: bool = True,
        table: str = "trg_push") -> None:
    con.execute("insert into marts.customers values (?, ?, null, 'Giulia', 'Rossi', 'Bologna', 'IT', 'Europe/Rome', "
                "?, ?)", [customer_id, f"{customer_id}@example.it", push_ok, email_ok])
    if token:
        con.execute("insert into marts.customer_push_tokens values (?, ?, 'android', '4.2.0', ?, ?)",
                    [customer_id, token, f"{customer_id}-0", (NOW - timedelta(days=1)).replace(tzinfo=None)])
    con.execute(f"insert into triggers.{table} values (?, ?, ?, null, ?)",
                [f"{customer_id}:1", customer_id, (NOW - timedelta(hours=1)).replace(tzinfo=None),
                 '[{"product_id": "P1", "name": "Moka Express", "price": 29.0, "quantity": 1}]'])


def rows(con) -> dict[str, tuple]:
    return {k: (s, ch, t, r) for k, s, ch, t, r in con.execute(
        "select trigger_key, state, channel, template, reason from activation.message_ledger").fetchall()}


@pytest.fixture
def email(smtp):  # noqa: F811
    host, port, _ = smtp
    ch = SmtpChannel(host, port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
    before = len(_received(smtp))
    yield ch, lambda: _received(smtp)[before:]
    ch.close()


def test_push_where_the_app_is_installed_else_the_email_and_never_without_consent(sandbox, both, email):  # noqa: F811
    mail, received = email
    add(both, "app", device(1))
    add(both, "no_app")
    add(both, "no_push_consent", device(2), push_ok=False)
    add(both, "neither", push_ok=False, email_ok=False)
    add(both, "suppressed")
    ensure_ledger(both)
    both.execute("insert into activation.suppression_list values (?, 'complaint', ?)",
                      [email_sha256("suppressed@example.it"), NOW.replace(tzinfo=None)])
    push = channel(sandbox)
    report = run_pass(both, [push_or_email()], {"push": push, "email": mail}, Templates(), CAPS, NOW)
    found = rows(both)
    assert found["app:1"] == ("sent", "push", "abandoned_cart_push", None)
    assert found["no_app:1"] == ("sent", "email", "abandoned_cart", "by the fallback email (push: no push token)")
    assert found["no_push_consent:1"] == ("sent", "email", "abandoned_cart",
                                          "by the fallback email (push: no consent)")
    assert found["neither:1"] == ("suppressed", "email", "abandoned_cart",
                                  "no consent at send time, by the fallback email (push: no consent)")
    assert found["suppressed:1"][:3] == ("suppressed", "email", "abandoned_cart")
    assert found["suppressed:1"][3].startswith("on the suppression list, by the fallback email")
    assert [m["token"] for m in state(sandbox)["messages"]] == [device(1)]
    assert sorted(m["To"].addresses[0].addr_spec for m in received()) == ["no_app@example.it",
                                                                        "no_push_consent@example.it"]
    assert report.outcomes["abandoned_cart_push"] == {"sent": 3, "suppressed": 2}
    # `attiva messages why` says it went by the fallback, and why.
    _, why = status.why(both, "no_app")
    listed = status.campaigns_table(status.campaigns(both))
    assert "abandoned_cart_push sent by the fallback: 2 email" in listed
    assert "abandoned_cart_push suppressed: 1 no consent at send time, 1 on the suppression list" in listed
    said = why[0]["explanation"]
    assert "accepted by email" in said and said.endswith("; by the fallback email (push: no push token)")
    push.close()


def test_the_caps_count_the_fallback_as_the_one_message(sandbox, both, email):  # noqa: F811
    mail, received = email
    add(both, "c1")  # no app: its push goes by email
    add(both, "c1_other", table="trg_other")
    both.execute("update triggers.trg_other set customer_id = 'c1'")
    lower = Trigger(name="trg_other", relation="triggers.trg_other", campaign="other", channel="email",
                    consent="email_marketable", marketing=True, priority=10, holdout=0.0,
                    expires_after=timedelta(days=1), quiet_hours=None, columns=COLUMNS,
                    steps=(Step(1, "abandoned_cart", timedelta(0)),))
    run_pass(both, [push_or_email(), lower], {"push": channel(sandbox), "email": mail}, Templates(), CAPS, NOW)
    found = rows(both)
    assert found["c1:1"][:3] == ("sent", "email", "abandoned_cart")
    assert found["c1_other:1"][0] == "suppressed" and "frequency cap" in found["c1_other:1"][3]
    assert len(received()) == 1
    # The next day's fallback counts like any message: one more occurrence, one more email, and no push at all.
    both.execute("insert into triggers.trg_push values ('c1:2', 'c1', ?, null, '[]')",
                      [(NOW + timedelta(hours=1)).replace(tzinfo=None)])
    run_pass(both, [push_or_email()], {"push": channel(sandbox), "email": mail}, Templates(), CAPS,
             NOW + timedelta(hours=2))
    assert rows(both)["c1:2"][0] == "suppressed" and "frequency cap" in rows(both)["c1:2"][3]
    assert len(received()) == 1 and state(sandbox)["messages"] == []


def test_a_message_retried_after_going_by_the_fallback_stays_with_it(sandbox, both, email):  # noqa: F811
    mail, _ = email
    add(both, "c1")
    run_pass(both, [push_or_email()], {"push": channel(sandbox), "email": mail}, Templates(), CAPS, NOW)
    # As a transient failure of the email leaves it: planned again, with the channel and template it went by.
    both.execute("update activation.message_ledger set state = 'planned', sent_at = null")
    both.execute("insert into marts.customer_push_tokens values ('c1', ?, 'android', '4.2.0', 'c1-0', ?)",
                      [device(5), NOW.replace(tzinfo=None)])
    run_pass(both, [push_or_email()], {"push": channel(sandbox), "email": mail}, Templates(),
             Settings(caps=Caps(None, None), quiet_hours=None), NOW + timedelta(minutes=5))
    assert rows(both)["c1:1"] == ("sent", "email", "abandoned_cart",
                                       "by the fallback email (push: retried where it first went)")
    assert state(sandbox)["messages"] == []
    # An unknown outcome is settled by the channel it went by: SMTP cannot be asked, so never sent again.
    both.execute("update activation.message_ledger set state = 'unknown', reason = 'outcome unknown'")
    run_pass(both, [push_or_email()], {"push": channel(sandbox), "email": mail}, Templates(),
             Settings(caps=Caps(None, None), quiet_hours=None), NOW + timedelta(minutes=10))
    state_, by, _, reason = rows(both)["c1:1"]
    assert (state_, by) == ("unknown", "email") and "email cannot be asked" in reason
    assert state(sandbox)["messages"] == []


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"fallback": {"channel": "pigeon", "consent": "email_marketable"}}, "fallback.channel", "'pigeon' is not in"),
    ({"fallback": {"channel": "push", "consent": "email_marketable"}}, "fallback.channel", "another channel"),
    ({"fallback": {"channel": "email", "consent": "likes_mail"}}, "fallback.consent", "not a column"),
    ({"fallback": {"channel": "email"}}, "fallback.consent", ""),
    ({"fallback": {"channel": "email", "consent": "email_marketable"}}, r"steps\[0\].fallback_template",
     "each step names the template"),
    ({"steps": [{"template": "abandoned_cart_push", "delay": "2h", "fallback_template": "abandoned_cart"}]},
     r"steps\[0\].fallback_template", "declare the campaign's fallback"),
])
def test_a_fallback_declared_wrong_is_refused_naming_the_field(change, field, message):
    manifest = copy.deepcopy(load_manifest())
    manifest["nodes"]["model.attiva.trg_abandoned_cart_push"]["config"]["meta"]["messaging"].update(change)
    with pytest.raises(PolicyError, match=f"trg_abandoned_cart_push.*meta.messaging.{field}.*{message}"):
        triggers(manifest, CHANNELS, {"customer_id", "consent_push", "email_marketable"})


def test_a_fallback_declared_right_is_read():
    manifest = copy.deepcopy(load_manifest())
    policy = manifest["nodes"]["model.attiva.trg_abandoned_cart_push"]["config"]["meta"]["messaging"]
    policy["fallback"] = {"channel": "email", "consent": "email_marketable"}
    policy["steps"] = [{"template": "abandoned_cart_push", "delay": "2h", "fallback_template": "abandoned_cart"}]
    [trigger] = [t for t in triggers(manifest, CHANNELS) if t.campaign == "abandoned_cart_push"]
    assert trigger.fallback == Fallback("email", "email_marketable") and trigger.channels == ("push", "email")
    assert trigger.steps[0].fallback_template == "abandoned_cart"
