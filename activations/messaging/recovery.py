"""What a killed pass left behind, settled at the start of the next one.

A pass claims a batch in the ledger (`queued`) and records each message in the send journal
(journal.py) before and after its channel call. Reading both:

- `queued` in the journal too: it never left; back to `planned`, so this pass sends it;
- an outcome in the journal not yet in the ledger: that outcome;
- `sending` in the journal: it was in flight, its outcome is `unknown`;
- no journal at all (deleted, or a pass of an older version): `unknown`, never guessed as unsent.

Then every `unknown` row is asked about where the channel can tell: an ESP whose activity feed
is searched by Attiva's message id (SendGrid's Email Activity API, the sandbox's too) says
whether it accepted the message: accepted ones become `sent`, the others go back to `planned`
and are sent again, so these channels are effectively exactly-once. Twilio has no such feed and no
idempotency key: its lookup lists the messages sent to the customer's number since the send began and
matches the marker that ends each body (destinations/twilio/messages.py), with the same outcome. A channel whose resend is
harmless (the Salesforce Task is an upsert on the message id) sends it again. SMTP cannot be
asked: the row stays `unknown` and is never resent (at-most-once, with the window of the
messages in flight).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from activations.engine.dialect import has_table
from activations.messaging import ledger
from activations.messaging.delivery import Channel, can_look_up
from activations.messaging.journal import SendJournal

NEVER_LEFT = "the pass ended before sending it: sent again"
IN_FLIGHT = "outcome unknown: in flight when the pass ended"
NO_JOURNAL = "outcome unknown: claimed by a pass that ended, and no send journal says how far it got"
NOT_ACCEPTED = "the pass ended while sending it and {channel} has no trace of it: sent again"
RESEND_SAFE = "outcome unknown, and sending it again cannot duplicate it ({channel} upserts on the message id)"
CANNOT_ASK = "; {channel} cannot be asked, so it is not sent again (at-most-once)"
LOOKUPS_PER_PASS = 200  # activity searches are rate limited (SendGrid: 6 a minute): the rest wait for the next pass


@dataclass
class Recovery:
    """What the start of a pass settled."""

    resumed: int = 0  # never left: planned again
    outcomes: int = 0  # outcomes recorded in the journal, moved to the ledger
    unknown: int = 0  # rows whose outcome is unknown after this pass's recovery
    confirmed: int = 0  # unknown, then found accepted by the channel: sent
    resent: int = 0  # unknown, then found not accepted (or safe to repeat): planned again

    def __str__(self) -> str:
        parts = [f"{self.resumed} never left (sent now)" if self.resumed else "",
                 f"{self.outcomes} outcome(s) recorded just before the end" if self.outcomes else "",
                 f"{self.confirmed} confirmed accepted by the channel" if self.confirmed else "",
                 f"{self.resent} not accepted, sent again" if self.resent else "",
                 f"{self.unknown} with an unknown outcome (`attiva messages`)" if self.unknown else ""]
        found = "; ".join(p for p in parts if p)
        return f"left by an interrupted pass: {found}" if found else ""


def recover(con, journal: SendJournal, channels: Mapping[str, Channel], now: datetime,
            journal_existed: bool = True) -> Recovery:
    """Settle the rows a killed pass left `queued` (or `sending`, by older versions), then ask the
    channels that can tell about every `unknown` row."""
    ledger.ensure_ledger(con)
    report = Recovery()
    naive_now = now.replace(tzinfo=None)
    claimed = con.execute(f"select {', '.join(ledger.KEY)}, state from activation.message_ledger "
                          "where state in ('queued', 'sending')").fetchall()
    if claimed:
        entries = {(e["campaign"], e["trigger_key"], e["step"]): e for e in journal.entries()}
        changes = []
        for campaign, trigger_key, step, state in claimed:
            key = {"campaign": campaign, "trigger_key": trigger_key, "step": step}
            entry = entries.get((campaign, trigger_key, step)) if state == "queued" and journal_existed else None
            if entry is None:
                changes.append({**key, "state": "unknown", "reason": NO_JOURNAL, "sent_at": None, "provider_id": None,
                                "sending_at": None, "attempts_add": 1})
                report.unknown += 1
            elif entry["state"] == "queued":
                changes.append({**key, "state": "planned", "reason": NEVER_LEFT, "sent_at": None,
                                "provider_id": None, "sending_at": None, "attempts_add": 0})
                report.resumed += 1
            elif entry["state"] == "sending":
                changes.append({**key, "state": "unknown", "reason": IN_FLIGHT, "sent_at": None, "provider_id": None,
                                "sending_at": entry["at"], "attempts_add": 1})
                report.unknown += 1
            else:
                changes.append({**key, "state": entry["state"], "reason": entry["reason"],
                                "sent_at": entry["at"] if entry["state"] == "sent" else None,
                                "provider_id": entry["provider_id"], "sending_at": entry["at"], "attempts_add": 1})
                report.outcomes += 1
                report.unknown += entry["state"] == "unknown"
        ledger.update(con, pl.DataFrame(changes, schema=_SCHEMA), now)
    journal.clear()
    _ask_channels(con, channels, naive_now, report, now)
    return report


_SCHEMA = {"campaign": pl.String, "trigger_key": pl.String, "step": pl.Int32, "state": pl.String,
           "reason": pl.String, "sent_at": pl.Datetime("us"), "provider_id": pl.String,
           "sending_at": pl.Datetime("us"), "attempts_add": pl.Int32}


def _ask_channels(con, channels: Mapping[str, Channel], naive_now: datetime, report: Recovery,
                  now: datetime) -> None:
    rows = con.execute(f"""select {', '.join(ledger.KEY)}, channel, message_id, sending_at, reason
                           from activation.message_ledger where state = 'unknown'""").fetchall()
    changes = []
    asked = 0
    by_channel: dict[str, list[tuple]] = {}
    for row in rows:
        by_channel.setdefault(row[3], []).append(row)
    for name, found in sorted(by_channel.items()):
        channel = channels.get(name)
        if channel is None:
            continue  # not in this pass (its campaign is not selected): a later pass asks
        if getattr(channel, "resend_is_safe", False):
            for campaign, trigger_key, step, _, _, _, _ in found:
                changes.append({"campaign": campaign, "trigger_key": trigger_key, "step": step, "state": "planned",
                                "reason": RESEND_SAFE.format(channel=name), "sent_at": None, "provider_id": None})
            report.resent += len(found)
            continue
        if not can_look_up(channel):
            for campaign, trigger_key, step, _, _, _, reason in found:
                if reason and "cannot be asked" not in reason:
                    changes.append({"campaign": campaign, "trigger_key": trigger_key, "step": step,
                                    "state": "unknown", "reason": reason + CANNOT_ASK.format(channel=name),
                                    "sent_at": None, "provider_id": None})
            continue
        # Only once the channel's feed has had time to show it: absent too early is not "not accepted".
        lag = timedelta(seconds=channel.activity_lag)
        ripe = [r for r in found if not lag or r[5] is None or r[5] + lag <= naive_now]
        ripe = ripe[:max(0, LOOKUPS_PER_PASS - asked)]
        if not ripe:
            continue
        if getattr(channel, "lookup_by_recipient", False):  # Twilio: asked by number and send time
            answers = channel.accepted([r[4] for r in ripe], _recipients(con, [r[4] for r in ripe]))
        else:
            answers = channel.accepted([r[4] for r in ripe])
        asked += len(ripe)
        for campaign, trigger_key, step, _, message_id, sending_at, _ in ripe:
            if message_id not in answers:
                continue  # the feed could not be asked now (rate limit, outage): the next pass asks again
            key = {"campaign": campaign, "trigger_key": trigger_key, "step": step}
            provider_id = answers[message_id]
            if provider_id is not None:
                changes.append({**key, "state": "sent", "reason": f"confirmed by {name}'s activity feed after the "
                                "pass ended", "sent_at": sending_at or naive_now, "provider_id": provider_id})
                report.confirmed += 1
            else:
                changes.append({**key, "state": "planned", "reason": NOT_ACCEPTED.format(channel=name),
                                "sent_at": None, "provider_id": None})
                report.resent += 1
    if changes:
        schema = {k: v for k, v in _SCHEMA.items() if k in changes[0]}
        ledger.update(con, pl.DataFrame(changes, schema=schema), now)
    report.unknown = con.execute("select count(*) from activation.message_ledger "
                                 "where state = 'unknown'").fetchone()[0]


def _recipients(con, message_ids: list[str]) -> dict[str, tuple[str | None, datetime | None]]:
    """message id -> (the customer's phone now, when its send began), for a channel asked by number."""
    if not message_ids or not has_table(con, "marts", "customers"):
        return {}
    placeholders = ", ".join("?" for _ in message_ids)
    rows = con.execute(f"""select l.message_id, c.phone, l.sending_at from activation.message_ledger as l
                           left join marts.customers as c on c.customer_id = l.customer_id
                           where l.message_id in ({placeholders})""", message_ids).fetchall()
    return {message_id: (phone, sending_at) for message_id, phone, sending_at in rows}
