"""The sandbox ESP's Event Webhook: what recipients did with the mail the sandbox received.

A real ESP posts batches of events (delivered, open, click, bounce, unsubscribe, spam
report) to a webhook as recipients act. Here the recipients are simulated, deterministically
from a seed and each message's id, over the mail the sandbox stored: its SMTP server's
`<state>/smtp/messages.jsonl` and SendGrid's `POST /v3/mail/send` messages. The batch has
SendGrid's Event Webhook shape (`email, timestamp, event, sg_event_id, sg_message_id,
smtp-id, category, url, type`, custom args at the top level), and `attiva feedback` lands it
through activations/messaging/feedback.py.

Each message is reported once: `<state>/engagement_cursor.json` remembers how much of each
store earlier batches covered. Addresses whose mailbox part contains "bounce", "unsubscribe"
or "complain" always do that, so tests and demos can count on them.

Rates per template: `<state>/recipients.json`, `{"templates": {"<template>": {"open": 0.3,
"click_given_open": 0.2}}}`, overrides the open and click rates below for the messages of that
template (read from the X-Attiva-Template header); the simulator (simulator/) plants an A/B test's
true rates this way. Its `"habits": {"lift": 1.6, "readers": {"<email>": [19, "Europe/Rome"]}}` plants
when each reader reads mail: a message whose Date header falls in the reader's hour (their local clock)
is opened `lift` times as often (at most 95 %), within that hour (`open_probability`).

A message is sent when its Date header says (the sender's clock: a pinned as_of moves it), else when it
arrived. Events are never stamped after the batch: the wall clock, or `<state>/clock.json`
(`{"now": <epoch seconds>}`) when the simulator's clock is ahead of it.

The simulated recipients act at once: a message's whole story (delivered, opened hours later,
clicked, ...) comes in the first batch after it arrived, each event stamped at its simulated
time but never later than the batch, so nothing lands in the warehouse dated in the future.
The running sandbox hands the batch out at `POST /_sandbox/mail/events` (what its Event
Webhook would have posted since the last call), which the pipeline's feedback step reads.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.smtp import message_html
from sandbox.wire import dumps, loads

CURSOR = "engagement_cursor.json"
RECIPIENTS = "recipients.json"  # open and click rates per template, when set (the simulator's planted A/B truth)
CLOCK = "clock.json"  # the simulator's clock, when it runs one
HARD_BOUNCE, SOFT_BOUNCE = 0.01, 0.01  # of messages
OPEN, CLICK_GIVEN_OPEN = 0.35, 0.25  # of delivered, of opened
UNSUBSCRIBE, COMPLAINT = 0.01, 0.002  # of delivered
_HREF = re.compile(r'href="([^"]+utm_source=attiva[^"]*)"')


def _unit(seed: int, message_id: str, what: str) -> float:
    digest = hashlib.sha256(f"{seed}\x1f{message_id}\x1f{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _campaign(message_id: str) -> str | None:
    """Attiva's message ids read `<campaign>.<digest>.<step>@attiva`."""
    local = message_id.split("@", 1)[0]
    parts = local.rsplit(".", 2)
    return parts[0] if len(parts) == 3 else None


def recipient_events(message_id: str, email: str, sent_at: float, html: str | None, campaign: str | None,
                     seed: int = 1, until: float | None = None,
                     rates: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The events one message causes, in SendGrid's Event Webhook shape; none stamped after `until`.
    `rates` (`open`, `click_given_open`) replace the default rates for this message."""
    rates = rates or {}
    mailbox = email.split("@", 1)[0].lower()
    categories = [campaign] if campaign else []

    def event(kind: str, at: float, **extra: Any) -> dict[str, Any]:
        event_id = hashlib.sha256(f"{message_id}\x1f{kind}".encode()).hexdigest()[:22]
        at = max(sent_at, min(at, until)) if until is not None else at
        return {"email": email, "timestamp": int(at), "event": kind, "sg_event_id": event_id,
                "sg_message_id": f"{event_id[:14]}.sandbox", "smtp-id": f"<{message_id}>", "category": categories,
                "attiva_message_id": message_id, **({"attiva_campaign": campaign} if campaign else {}), **extra}

    fate = _unit(seed, message_id, "fate")
    if "bounce" in mailbox or fate < HARD_BOUNCE:
        return [event("bounce", sent_at + 20, type="bounce", reason="550 5.1.1 mailbox does not exist")]
    if fate < HARD_BOUNCE + SOFT_BOUNCE:
        return [event("bounce", sent_at + 20, type="blocked", reason="452 4.2.2 mailbox full")]
    out = [event("delivered", sent_at + 5, response="250 OK")]
    opened_at = sent_at + 600 + int(_unit(seed, message_id, "open_at") * 36 * 3600)
    if rates.get("in_hour"):  # the reader's own hour: read within it
        opened_at = sent_at + 60 + int(_unit(seed, message_id, "open_at") * (3540 - sent_at % 3600))
    unsubscribes = "unsubscribe" in mailbox or _unit(seed, message_id, "unsubscribe") < UNSUBSCRIBE
    complains = "complain" in mailbox or _unit(seed, message_id, "complaint") < COMPLAINT
    if unsubscribes or _unit(seed, message_id, "open") < rates.get("open", OPEN):
        out.append(event("open", opened_at))
        links = _HREF.findall(html or "")
        if links and _unit(seed, message_id, "click") < rates.get("click_given_open", CLICK_GIVEN_OPEN):
            out.append(event("click", opened_at + 90, url=links[0].replace("&amp;", "&")))
    if unsubscribes:
        out.append(event("unsubscribe", opened_at + 120))
    if complains:
        out.append(event("spamreport", sent_at + 3600))
    return out


def _planted(state_dir: Path) -> dict[str, Any]:
    path = state_dir / RECIPIENTS
    return loads(path.read_bytes()) if path.exists() else {}


def open_probability(base: float, lift: float, reader: list | None, sent_at: float) -> tuple[float, bool]:
    """The chance a delivered message is opened, and whether it reached the reader in their own hour."""
    if not reader:
        return base, False
    hour, zone = reader
    in_hour = datetime.fromtimestamp(sent_at, ZoneInfo(zone)).hour == int(hour)
    return (min(0.95, base * lift), True) if in_hour else (base, False)


def _rates(planted: dict[str, Any], template: str | None, email: str, sent_at: float) -> dict[str, float]:
    rates = dict(planted.get("templates", {}).get(template or "", {}))
    habits = planted.get("habits") or {}
    reader = (habits.get("readers") or {}).get(email.strip().lower())
    if reader:
        rates["open"], rates["in_hour"] = open_probability(rates.get("open", OPEN), habits.get("lift", 1.0), reader,
                                                           sent_at)
    return rates


def _now(state_dir: Path) -> float:
    """The wall clock, or the simulator's when it is ahead (a simulation runs from now into the future)."""
    path = state_dir / CLOCK
    return max(time.time(), float(loads(path.read_bytes())["now"]) if path.exists() else 0.0)


def _smtp_messages(state_dir: Path, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    path = state_dir / "smtp" / "messages.jsonl"
    if not path.exists():
        return
    with open(path, "rb") as lines:
        for number, line in enumerate(lines):
            if number < skip or not line.endswith(b"\n"):  # an unfinished last line is read next time
                continue
            yield number + 1, loads(line)


def new_events(state_dir: Path | str, seed: int = 1, *, advance: bool = True, now: float | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
    """Events for the mail received since the last batch (SMTP and SendGrid mail send), none stamped
    after `now` (epoch seconds, default the clock), for at most `limit` messages (the rest come in
    the next batch); `advance` moves the cursor past what was reported."""
    state_dir = Path(state_dir)
    until = _now(state_dir) if now is None else now
    budget = limit if limit is not None else float("inf")
    cursor_path = state_dir / CURSOR
    cursor = loads(cursor_path.read_bytes()) if cursor_path.exists() else {}
    events: list[dict[str, Any]] = []
    planted = _planted(state_dir)
    smtp_done = cursor.get("smtp", 0)
    for line_number, record in _smtp_messages(state_dir, cursor.get("smtp", 0)):
        if budget <= 0:
            break
        smtp_done = line_number
        message_id = record.get("attiva_message_id") or (record.get("message_id") or "").strip("<>")
        if not message_id:
            continue
        budget -= 1
        html = message_html(record)
        sent_at = epoch(record.get("date") or record["received_at"])
        for email in record.get("rcpt_tos") or []:
            events += recipient_events(message_id, email, sent_at, html, _campaign(message_id), seed, until,
                                       _rates(planted, record.get("attiva_template"), email, sent_at))
    sendgrid_path = state_dir / "sendgrid.json"
    mail = loads(sendgrid_path.read_bytes()).get("mail", []) if sendgrid_path.exists() else []
    sendgrid_done = cursor.get("sendgrid", 0)
    for stored in mail[sendgrid_done:]:
        if budget <= 0:
            break
        sendgrid_done += 1
        budget -= 1
        body = stored.get("message") or {}
        custom = body.get("custom_args") or {}
        message_id = custom.get("attiva_message_id") or stored.get("message_id")
        html = next((c.get("value") for c in body.get("content") or [] if c.get("type") == "text/html"), None)
        for personalization in body.get("personalizations") or []:
            for to in personalization.get("to") or []:
                events += recipient_events(message_id, to["email"], epoch(stored["received_at"]), html,
                                           custom.get("attiva_campaign") or _campaign(message_id), seed, until)
    if advance:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = cursor_path.with_name(f".{CURSOR}.{os.getpid()}.tmp")
        tmp.write_bytes(dumps({"smtp": smtp_done, "sendgrid": sendgrid_done}))
        os.replace(tmp, cursor_path)
    return events
