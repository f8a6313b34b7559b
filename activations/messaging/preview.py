"""A campaign step's message as a pass would send it, for one of the trigger's current occurrences, outside
a pass: what the console shows and test-sends.

It reads the occurrence as the send path does (send.occurrence: the customer as they are now and the
trigger's payload), fetches the same recommendations and renders with the same `send.compose`, so the
preview is the message. Three things differ, on purpose, because nothing here may reach or change the
real customer: no coupon is issued (a placeholder code `TEST-…` with the step's discount and validity),
the unsubscribe link carries no valid token (clicking it unsubscribes nobody), and a test send gets its
own Message-ID (never a ledger row's, so no report, click or bounce is ever counted for the campaign),
the subject prefix "[TEST] " and the header `X-Attiva-Test: true`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from activations import warehouse
from activations.messaging import links, send
from activations.messaging.channels import ChannelConfigError, channel_from_config, load_channel_entries
from activations.messaging.delivery import Delivery, OutgoingMessage, transient
from activations.messaging.policy import Settings, Trigger
from activations.messaging.templates import Templates

TEST_SUBJECT = "[TEST] "
TEST_HEADER = "X-Attiva-Test"
# Channel types that deliver to an email address, and to a phone number: a test send goes to the one typed.
EMAIL_CHANNELS = ("smtp", "sendgrid_mail")
PHONE_CHANNELS = ("twilio_sms",)
MAX_CANDIDATES = 20


def candidates(con, trigger: Trigger, limit: int = MAX_CANDIDATES) -> list[dict[str, Any]]:
    """Occurrences of the trigger now (the rows a message is rendered from), those the campaign's ledger
    already has first, newest first: trigger_key, customer_id, occurred_at, in_ledger."""
    in_ledger, params = "false", [limit]
    if warehouse.has_table(con, "activation", "message_ledger"):
        in_ledger = ("exists (select 1 from activation.message_ledger as l "
                     "where l.campaign = ? and l.trigger_key = cast(t.trigger_key as string))")
        params = [trigger.campaign, limit]
    cursor = con.execute(f"""
        select cast(t.trigger_key as string) as trigger_key, cast(t.customer_id as string) as customer_id,
               t.occurred_at, {in_ledger} as in_ledger
        from {trigger.relation} as t
        where t.customer_id is not null and t.trigger_key is not null
        order by in_ledger desc, t.occurred_at desc, trigger_key
        limit ?""", params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def render(con, trigger: Trigger, step: int, template: str, trigger_key: str, templates: Templates,
           settings: Settings, *, edge_case: bool = False,
           shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
           now: datetime | None = None) -> OutgoingMessage | None:
    """Step `step`'s `template` rendered for occurrence `trigger_key`, as a pass would send it (None if the
    trigger no longer has that row). `edge_case`: the same occurrence with no first or last name and no
    recommendations. `shown` may change the row first (the console masks personal data for a viewer).
    TemplateError if the template cannot render it."""
    row = send.occurrence(con, trigger, trigger_key)
    if row is None:
        return None
    recommended = [] if edge_case else send.recommendations(con, [row["customer_id"]], settings.product_url).get(
        row["customer_id"], [])
    row.update(step=step, template=template, message_id=f"preview.{uuid.uuid4().hex}@attiva",
               channel=trigger.step_channel(trigger.steps[step - 1]))  # a journey's step: its own channel
    if edge_case:
        row.update(c_first_name=None, c_last_name=None)
    if shown:
        row = shown(row)
    return send.compose(row, trigger, None, templates, recommended, _placeholder_coupon(trigger, step, row, now),
                        links.unsubscribe_base_url() + "?token=test-send-unsubscribes-nobody")


def _placeholder_coupon(trigger: Trigger, step: int, row: dict[str, Any], now: datetime | None) -> dict[str, Any] | None:
    declared = trigger.steps[step - 1].coupon
    if declared is None:
        return None
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    return {"code": "TEST-0000-0000", "customer_id": row["customer_id"], "campaign": trigger.campaign,
            "trigger_key": row["trigger_key"], "step": step, "discount_pct": declared.discount_pct,
            "issued_at": issued, "expires_at": issued + timedelta(days=declared.valid_days), "redeemed_at": None}


def _channel(trigger: Trigger, step: int | None) -> str:
    """The channel a test of `step` goes by: the step's own in a journey across channels, else the campaign's."""
    return trigger.step_channel(trigger.steps[step - 1]) if step and 0 < step <= len(trigger.steps) else trigger.channel


def test_recipient(trigger: Trigger, step: int | None = None) -> str | None:
    """What a test of this campaign (its `step`) is sent to: "email", "phone" (an SMS channel), or None (no test
    send: a CRM task, a webhook, a channel channels.yml does not have)."""
    entry = load_channel_entries().get(_channel(trigger, step))
    kind = entry.get("type") if isinstance(entry, dict) else None
    return "email" if kind in EMAIL_CHANNELS else "phone" if kind in PHONE_CHANNELS else None


def as_test(message: OutgoingMessage, to: str, recipient: str = "email") -> OutgoingMessage:
    """The message addressed to `to` (an address, or an E.164 number for "phone") instead, marked as a test
    ("[TEST] " before the subject, or before an SMS's text), with a Message-ID of its own."""
    marked = replace(message, to_name=None, subject=TEST_SUBJECT + message.subject,
                     message_id=f"test.{uuid.uuid4().hex}@attiva", headers={**message.headers, TEST_HEADER: "true"})
    if recipient == "phone":
        return replace(marked, to_email="", to_phone=to, text=TEST_SUBJECT + message.text)
    return replace(marked, to_email=to, to_phone="")


class TestSendRefused(ValueError):
    """The campaign's channel cannot deliver a test to an address (not an email channel, or misconfigured)."""


def send_test(trigger: Trigger, message: OutgoingMessage, step: int | None = None) -> Delivery:
    """Send a test message (`as_test`) through the trigger's (its step's) channel, as channels.yml configures it."""
    name = _channel(trigger, step)
    entry = load_channel_entries().get(name)
    if test_recipient(trigger, step) is None:
        raise TestSendRefused(f"channel {name!r} sends neither email ({', '.join(EMAIL_CHANNELS)}) nor "
                              f"SMS ({', '.join(PHONE_CHANNELS)}): a test goes to an address or a number")
    try:
        channel = channel_from_config(name, entry, os.environ)
    except ChannelConfigError as exc:
        raise TestSendRefused(str(exc)) from None
    try:
        return channel.send(replace(message, from_email=getattr(channel, "from_email", ""),
                                    from_name=getattr(channel, "from_name", "")))
    except Exception as exc:  # as in a pass: a broken channel is an answer, not a crash
        return transient(f"{type(exc).__name__}: {exc}")
    finally:
        channel.close()
