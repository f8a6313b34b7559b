"""Events posted to `POST /v1/events`: validated one by one, appended durably to the landing folder.

Accepted events are written as JSON lines in the landing contract's `events` format, one file per
request (or per group of concurrent requests) under `events/api/<UTC date>/`: first to a hidden temporary file (ingestion skips dot
files), fsync'ed, renamed into place, and the folder fsync'ed. The request is acknowledged only
after that, so an acknowledged event survives a crash and ingestion never reads a partial file.

Replays: an event id already written by this process is answered `duplicate` and not written
again; the warehouse drops replays across processes anyway (the contract's `event_id` is unique).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from activations.ingest.contract import SOURCES

EVENTS = next(s for s in SOURCES if s.name == "events")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_started", "identify", "login", "form_submit",
               "app_open")
MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 500
MAX_EVENT_BYTES = 16 << 10
MAX_TEXT = 2048
MAX_AGE = timedelta(days=30)
MAX_AHEAD = timedelta(minutes=5)
IDENTIFYING = ("anonymous_id", "user_id", "email", "phone")


@dataclass
class Outcome:
    index: int
    event_id: str | None
    status: str  # accepted, duplicate or rejected
    reason: str | None = None

    def as_json(self) -> dict:
        out = {"index": self.index, "event_id": self.event_id, "status": self.status}
        if self.reason:
            out["error"] = {"code": "invalid_event", "message": self.reason}
        return out


def validate_event(event, now: datetime) -> tuple[dict | None, str | None]:
    """(the event as it will be written, None) or (None, the reason it is refused)."""
    if not isinstance(event, dict):
        return None, "an event must be a JSON object"
    if len(orjson.dumps(event)) > MAX_EVENT_BYTES:
        return None, f"event larger than {MAX_EVENT_BYTES} bytes"
    columns = {c.name: c for c in EVENTS.columns}
    unknown = sorted(set(event) - set(columns))
    if unknown:
        return None, f"unknown field(s): {', '.join(unknown)} (the landing contract's events columns only)"
    for name, column in columns.items():
        value = event.get(name)
        if column.required and (value is None or value == ""):
            return None, f"{name} is required"
        if value is None:
            continue
        if column.type == "bigint":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000:
                return None, f"{name} must be a whole number between 1 and 10000"
        elif not isinstance(value, str):
            return None, f"{name} must be a string"
        elif len(value) > MAX_TEXT:
            return None, f"{name} longer than {MAX_TEXT} characters"
    if len(event["event_id"]) > 128:
        return None, "event_id longer than 128 characters"
    if event["event_type"] not in EVENT_TYPES:
        return None, f"event_type must be one of {', '.join(EVENT_TYPES)}"
    try:
        occurred = datetime.fromisoformat(event["occurred_at"])
    except ValueError:
        return None, "occurred_at is not an ISO 8601 timestamp (e.g. 2026-11-20T10:00:00Z)"
    occurred = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    if occurred > now + MAX_AHEAD:
        return None, f"occurred_at is in the future (more than {MAX_AHEAD} after the server's clock)"
    if occurred < now - MAX_AGE:
        return None, f"occurred_at is older than {MAX_AGE.days} days"
    if not any(event.get(k) for k in IDENTIFYING):
        return None, f"an event needs one of {', '.join(IDENTIFYING)} to be tied to a visitor"
    row = {k: v for k, v in event.items() if v is not None}
    row["occurred_at"] = occurred.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return row, None


@dataclass
class _Ticket:
    rows: list[dict]
    done: bool = False
    path: Path | None = None
    error: BaseException | None = None


class EventWriter:
    """Appends accepted events to the landing folder, durably.

    Group commit: requests that arrive while a file is being written and fsync'ed wait for it,
    then the first of them writes everything that piled up in one file. One request alone gets
    its own file at once; many at a time share files and fsyncs instead of queueing for one each.
    """

    def __init__(self, landing: Path | str, remember: int = 200_000):
        self.folder = Path(landing) / EVENTS.folder / "api"
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._pending: list[_Ticket] = []
        self._flushing = False

    def is_duplicate(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._seen

    def write(self, rows: list[dict]) -> Path | None:
        """Write the rows; return the file once it is on disk (None when there was nothing to write)."""
        if not rows:
            return None
        ticket = _Ticket(rows)
        with self._turn:
            self._pending.append(ticket)
            while not ticket.done:
                if self._flushing:
                    self._turn.wait()
                    continue
                self._flushing = True
                batch, self._pending = self._pending, []
                self._turn.release()
                path, error = None, None
                try:
                    path = self._write_file([r for t in batch for r in t.rows])
                except BaseException as exc:  # every request of the group learns it was not written
                    error = exc
                finally:
                    self._turn.acquire()
                    self._flushing = False
                for t in batch:
                    t.done, t.path, t.error = True, path, error
                self._turn.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.path

    def _write_file(self, rows: list[dict]) -> Path:
        now = datetime.now(UTC)
        folder = self.folder / now.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events-{now.strftime('%H%M%S%f')}-{uuid.uuid4().hex[:8]}.jsonl"
        tmp = folder / f".{name}.tmp"
        try:
            with open(tmp, "wb") as out:
                out.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            for r in rows:
                self._seen[r["event_id"]] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return folder / name


def collect(body, now: datetime, writer: EventWriter) -> list[Outcome]:
    """Validate every event of a request body (one event, a list, or {"events": [...]}) and write the good ones."""
    events = body.get("events") if isinstance(body, dict) and "events" in body else body
    events = events if isinstance(events, list) else [events]
    outcomes: list[Outcome] = []
    rows: list[dict] = []
    in_batch: set[str] = set()
    for i, event in enumerate(events):
        row, reason = validate_event(event, now)
        event_id = event.get("event_id") if isinstance(event, dict) and isinstance(event.get("event_id"), str) else None
        if row is None:
            outcomes.append(Outcome(i, event_id, "rejected", reason))
        elif row["event_id"] in in_batch or writer.is_duplicate(row["event_id"]):
            outcomes.append(Outcome(i, event_id, "duplicate"))
        else:
            in_batch.add(row["event_id"])
            rows.append(row)
            outcomes.append(Outcome(i, event_id, "accepted"))
    writer.write(rows)
    return outcomes
