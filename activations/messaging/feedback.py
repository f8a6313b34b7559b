"""Engagement feedback: what the email service provider reports comes back as landing files, and
the addresses that must not be written to again go on the suppression list.

Two ways in, one format out. An ESP's export already follows the landing contract's
`email_engagement` source; a SendGrid Event Webhook batch (the JSON array SendGrid posts, or
the sandbox's, see sandbox/engagement.py) is turned into the same columns by
:func:`engagement_rows` and written by :func:`write_landing_file` into
`<landing>/email_engagement/`, where ingestion loads it like any export.

:func:`collect` is the automatic loop (Dagster's `feedback/engagement_events`, after every
send): it asks the ESP's event feed for what happened since the last call (ATTIVA_ESP_EVENTS_URL:
`make demo` and `make dev` point it at the sandbox's), lands it, loads the engagement
landing files into `raw.email_engagement` and refreshes the suppression list, so the report and
the next send see it without anyone running a command.

:func:`refresh_suppressions` also runs at the start of every messaging pass: hard bounces,
unsubscribes and spam complaints in `raw.email_engagement` add the address (SHA-256 of the
trimmed, lower-cased email, as the send step hashes it) to `activation.suppression_list`.

SMS comes back another way: `attiva serve` receives Twilio's signed status callbacks and inbound replies
(activations/serve/sms.py) and writes them as JSON lines under `<landing>/_sms_feedback/` (a `_` folder:
not a landing source, ingestion skips it). :func:`load_sms_feedback`, run at the start of every
messaging pass and by :func:`collect`, loads the new ones into `activation.sms_events` (delivered,
undelivered, failed, opt_out, opt_in) and puts opted-out and unreachable numbers (SHA-256 of the E.164
number) on `activation.sms_suppression_list`. An opt-in (START) after a STOP takes the number off again.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import requests

from activations import settings, warehouse
from activations.destinations.transport import Verdict, http_verdict
from activations.engine.dialect import has_table
from activations.messaging import ledger

ENGAGEMENT_FOLDER = "email_engagement"
# SendGrid event -> the contract's event_type; the others (processed, deferred, dropped,
# group_resubscribe) say nothing about the recipient and are not landed.
SENDGRID_EVENTS = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
SUPPRESSING = {"complaint": "spam complaint", "unsubscribe": "unsubscribed", "bounce": "hard bounce"}
SMS_FEEDBACK_FOLDER = "_sms_feedback"  # under the landing folder; `_`: ingestion never reads it
# Twilio's delivery error codes that say the number will never take an SMS: unknown destination, landline.
SMS_UNREACHABLE = {"30005": "unknown or inactive number", "30006": "a landline or unreachable carrier"}


def email_sha256(email: str) -> str:
    """The suppression list's key: SHA-256 of the trimmed, lower-cased address (as send.py hashes it)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def refresh_suppressions(con, now: datetime | None = None) -> int:
    """Add hard-bounced, unsubscribed and complaining addresses from `raw.email_engagement` to the
    suppression list; idempotent (an address already listed, for any reason, is left alone).
    Returns how many addresses were added."""
    ledger.ensure_ledger(con)
    if not has_table(con, "raw", "email_engagement"):
        return 0
    rows = con.execute("""
        select lower(trim(email)) as email, lower(trim(event_type)) as event_type, min(occurred_at) as first_at
        from raw.email_engagement
        where email is not null and trim(email) <> ''
          and (lower(trim(event_type)) in ('unsubscribe', 'complaint')
               or (lower(trim(event_type)) = 'bounce' and lower(trim(coalesce(bounce_type, ''))) = 'hard'))
        group by lower(trim(email)), lower(trim(event_type))
        order by 3""").fetchall()
    if not rows:
        return 0
    listed = {r[0] for r in con.execute("select email_sha256 from activation.suppression_list").fetchall()}
    added: dict[str, tuple[str, str]] = {}
    for email, event_type, first_at in rows:
        digest = email_sha256(email)
        if digest in listed or digest in added:
            continue
        when = f" on {first_at:%Y-%m-%d}" if isinstance(first_at, datetime) else ""
        added[digest] = (digest, f"{SUPPRESSING[event_type]}{when} (email engagement)")
    if added:
        stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
        rows = pl.DataFrame({"email_sha256": list(added), "reason": [r for _, r in added.values()]})
        view = f"_attiva_suppress_{uuid.uuid4().hex[:8]}"
        con.register(view, rows.to_arrow())  # one statement, however many addresses (executemany is per row)
        try:
            con.execute(f"insert into activation.suppression_list (email_sha256, reason, added_at) "
                        f"select email_sha256, reason, ? from {view}", [stamp])
        finally:
            con.unregister(view)
    return len(added)


def phone_sha256(phone: str) -> str:
    """The SMS suppression list's key: SHA-256 of the E.164 number, spaces removed (as send.py hashes it)."""
    return hashlib.sha256("".join(phone.split()).encode()).hexdigest()


def sms_feedback_folder() -> Path:
    return settings.landing_path() / SMS_FEEDBACK_FOLDER


def load_sms_feedback(con, now: datetime | None = None, folder: Path | None = None) -> int:
    """Load new SMS feedback files into `activation.sms_events` (each event once, by its id) and refresh the
    SMS suppression list from them; returns how many events were new."""
    ledger.ensure_ledger(con)
    folder = folder or sms_feedback_folder()
    if not folder.is_dir():
        return 0
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    rows: list[dict[str, Any]] = []
    # A file is written once, whole (renamed into place): one read is enough, so only new names are read.
    seen = {r[0] for r in con.execute("select distinct source_file from activation.sms_events").fetchall()}
    for path in sorted(folder.rglob("*.jsonl")):
        name = path.relative_to(folder).as_posix()
        if name in seen:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn line cannot exist (files are renamed into place); anything else is not ours
            if not isinstance(event, dict) or not event.get("event_id") or not event.get("phone"):
                continue
            try:
                occurred = datetime.fromisoformat(str(event.get("occurred_at")).replace("Z", "+00:00"))
            except ValueError:
                occurred = stamp.replace(tzinfo=UTC)
            rows.append({"event_id": str(event["event_id"]), "message_id": event.get("message_id"),
                         "provider_id": event.get("provider_id"), "phone_sha256": phone_sha256(str(event["phone"])),
                         "event_type": str(event.get("event_type")), "error_code": event.get("error_code"),
                         "occurred_at": occurred.astimezone(UTC).replace(tzinfo=None), "loaded_at": stamp,
                         "source_file": name})
    if not rows:
        return 0
    frame = pl.DataFrame(rows, schema={"event_id": pl.String, "message_id": pl.String, "provider_id": pl.String,
                                       "phone_sha256": pl.String, "event_type": pl.String, "error_code": pl.String,
                                       "occurred_at": pl.Datetime("us"), "loaded_at": pl.Datetime("us"),
                                       "source_file": pl.String})
    view = f"_attiva_sms_{uuid.uuid4().hex[:8]}"
    con.register(view, frame.unique("event_id").to_arrow())
    try:
        new = con.execute(f"select count(*) from {view} as v where not exists "
                          f"(select 1 from activation.sms_events as e where e.event_id = v.event_id)").fetchone()[0]
        con.execute(f"insert into activation.sms_events select v.* from {view} as v where not exists "
                    f"(select 1 from activation.sms_events as e where e.event_id = v.event_id)")
    finally:
        con.unregister(view)
    refresh_sms_suppressions(con, stamp)
    return int(new)


def refresh_sms_suppressions(con, now: datetime) -> None:
    """Each number's latest opt-out or opt-in decides (a STOP, Twilio's 21610, or a delivery error saying the
    number cannot take SMS, against a START since); the list is kept to what the events say."""
    codes = ", ".join(f"'{c}'" for c in SMS_UNREACHABLE)
    latest = con.execute(f"""
        select phone_sha256, event_type, error_code, occurred_at from (
            select *, row_number() over (partition by phone_sha256 order by occurred_at desc, loaded_at desc, event_id) as n
            from activation.sms_events
            where event_type in ('opt_out', 'opt_in') or error_code in ({codes}))
        where n = 1""").fetchall()
    listed = {r[0] for r in con.execute("select phone_sha256 from activation.sms_suppression_list").fetchall()}
    add, remove = [], []
    for digest, event_type, code, at in latest:
        if event_type == "opt_in":
            remove.append(digest)
            continue
        why = (f"replied STOP on {at:%Y-%m-%d}" if event_type == "opt_out" and code != "21610"
               else f"opted out (Twilio 21610) on {at:%Y-%m-%d}" if code == "21610"
               else f"{SMS_UNREACHABLE.get(code or '', 'unreachable')} (Twilio {code}) on {at:%Y-%m-%d}")
        if digest not in listed:
            add.append((digest, why, now))
    if remove:
        con.executemany("delete from activation.sms_suppression_list where phone_sha256 = ?", [[d] for d in remove])
    if add:
        con.executemany("insert into activation.sms_suppression_list values (?, ?, ?)", add)


def record_sms_opt_outs(con, phones: Iterable[tuple[str, str]], now: datetime) -> None:
    """Numbers the channel said have opted out (Twilio's 21610 at send time), with the message ids: recorded
    as `opt_out` events with code 21610, then the list refreshed."""
    stamp = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    rows = [[f"21610:{message_id}", message_id, None, phone_sha256(phone), "opt_out", "21610", stamp, stamp, None]
            for phone, message_id in phones]
    if not rows:
        return
    ledger.ensure_ledger(con)
    con.executemany("insert into activation.sms_events select ?, ?, ?, ?, ?, ?, ?, ?, ? where not exists "
                    "(select 1 from activation.sms_events where event_id = ?)", [[*r, r[0]] for r in rows])
    refresh_sms_suppressions(con, stamp)


# -- SendGrid Event Webhook -> landing file -------------------------------------------------------


def _bare_message_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().strip("<>")


def engagement_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """SendGrid Event Webhook objects as rows of the `email_engagement` landing contract.

    The message id is Attiva's own (custom arg `attiva_message_id`, else the `smtp-id` header),
    so measurement matches events to ledger rows; the campaign is the `attiva_campaign` custom
    arg, else the first category. A `bounce` of type `blocked` is a soft bounce, else hard.
    """
    rows = []
    for event in events:
        kind = SENDGRID_EVENTS.get(str(event.get("event", "")).lower())
        email = event.get("email")
        timestamp = event.get("timestamp")
        if kind is None or not isinstance(email, str) or not isinstance(timestamp, int | float):
            continue
        categories = event.get("category")
        if isinstance(categories, str):
            categories = [categories]
        campaign = event.get("attiva_campaign") or (categories[0] if categories else None)
        message_id = _bare_message_id(event.get("attiva_message_id")) or _bare_message_id(event.get("smtp-id"))
        event_id = event.get("sg_event_id") or hashlib.sha256(
            json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()[:22]
        rows.append({
            "engagement_id": str(event_id),
            "email": email,
            "event_type": kind,
            "occurred_at": datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "campaign": campaign,
            "message_id": message_id or _bare_message_id(event.get("sg_message_id")),
            "bounce_type": ("soft" if event.get("type") == "blocked" else "hard") if kind == "bounce" else None,
            "url": event.get("url") if kind == "click" else None,
        })
    return rows


def write_landing_file(rows: list[dict[str, Any]], landing: Path | str, prefix: str = "sendgrid-events") -> Path | None:
    """Write engagement rows as one JSON-lines file under `<landing>/email_engagement/`; None if no rows.

    The name carries the content's digest: the same batch written twice is one file, which
    ingestion's file ledger loads once. Written to a hidden file first and renamed, so ingestion
    never reads half a file.
    """
    if not rows:
        return None
    body = b"".join(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n" for row in rows)
    digest = hashlib.sha256(body).hexdigest()[:12]
    folder = Path(landing) / ENGAGEMENT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}.jsonl"
    existing = sorted(folder.glob(f"{prefix}-*-{digest}.jsonl"))
    if existing:
        return existing[0]
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(body)
    os.replace(tmp, path)
    return path


# -- the automatic loop: event feed -> landing file -> raw table -> suppression list ----------------

EVENTS_URL_ENV = "ATTIVA_ESP_EVENTS_URL"
BATCH_MESSAGES = 20_000  # messages per request: a 100k-message send comes back in a few responses


@dataclass(frozen=True)
class EventFeed:
    """Where new engagement events are asked for; None: landing files only. A feed that cannot be read
    fails the step, naming it."""

    url: str | None


def event_feed(env: Mapping[str, str] | None = None) -> EventFeed:
    """ATTIVA_ESP_EVENTS_URL; unset, `none` or empty: events only come as landing files (an ESP's export,
    a webhook receiver writing them). There is no default feed: the product knows no ESP's address."""
    return EventFeed(settings.esp_events_url(env))


def fetch_events(url: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every event the feed has for us, batch after batch until it answers with an empty one."""
    events: list[dict[str, Any]] = []
    while True:
        response = requests.post(url, params={"limit": BATCH_MESSAGES}, timeout=timeout)
        if response.status_code != 200:  # the syncs' verdict: only a retryable answer is worth a retry
            raise FeedbackError(f"the ESP event feed {url} answered HTTP {response.status_code}: "
                                f"{response.text[:200]}", retry=http_verdict(response.status_code) is Verdict.RETRY)
        batch = response.json()
        if not isinstance(batch, list):
            raise FeedbackError(f"the ESP event feed {url} did not answer with a JSON array of events")
        if not batch:
            return events
        events += batch


class FeedbackError(RuntimeError):
    """The event feed could not be read (it names the URL and what it answered); `retry`: asking again
    later may succeed (a timeout, 429, 5xx), as opposed to a wrong URL or token."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass
class FeedbackReport:
    feed: str  # the URL asked, or why none was
    events: dict[str, int] = field(default_factory=dict)  # contract event_type -> rows landed
    landed: Path | None = None
    files_loaded: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    suppressed: int = 0  # addresses added to the suppression list
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        events = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.events.items())) or "no new events"
        return (f"engagement feedback from {self.feed}: {events}"
                + (f" -> {self.landed}" if self.landed else "")
                + f"; loaded {self.rows_loaded:,} row(s) from {self.files_loaded} file(s)"
                + (f" ({self.rows_quarantined:,} quarantined)" if self.rows_quarantined else "")
                + f"; {self.suppressed:,} address(es) added to the suppression list")


def collect(landing: Path | str, warehouse_file: Path | str, *, feed: EventFeed | None = None,
            now: datetime | None = None) -> FeedbackReport:
    """Ask the event feed for new events and land them, load every new engagement landing file (the
    feed's and any ESP export dropped there) into `raw.email_engagement`, then refresh the
    suppression list. Returns what it did."""
    from activations.ingest import load_landing
    from activations.ingest.report import LOADED, REPLACED

    feed = feed or event_feed()
    report = FeedbackReport(feed=feed.url or f"landing files only (no {EVENTS_URL_ENV})")
    if feed.url:
        try:
            events = fetch_events(feed.url)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise FeedbackError(f"the ESP event feed {feed.url} could not be reached: {exc}") from None
        rows = engagement_rows(events)
        for row in rows:
            report.events[row["event_type"]] = report.events.get(row["event_type"], 0) + 1
        report.landed = write_landing_file(rows, landing, prefix="esp-events")
    folder = Path(landing)
    if (folder / ENGAGEMENT_FOLDER).is_dir():
        loaded = load_landing(folder, Path(warehouse_file), sources={ENGAGEMENT_FOLDER})
        report.files_loaded = sum(f.status in (LOADED, REPLACED) for f in loaded.files)
        report.rows_loaded = sum(f.rows_loaded for f in loaded.files)
        report.rows_quarantined = sum(f.rows_quarantined for f in loaded.files)
        report.problems = [f"{f.file}: {f.error}" for f in loaded.failed_files]
    with warehouse.connect(Path(warehouse_file)) as con:
        report.suppressed = refresh_suppressions(con, now)
        load_sms_feedback(con, now, folder / SMS_FEEDBACK_FOLDER)
    return report
