"""Events posted to `POST /v1/events`: validated one by one, appended durably to the landing folder.

Accepted events are written as JSON lines in the landing contract's `events` format, one file per
request (or per group of concurrent requests) under `events/api/<UTC date>/`: first to a hidden temporary file (ingestion skips dot
files), fsync'ed, renamed into place, and the folder fsync'ed. The request is acknowledged only
after that, so an acknowledged event survives a crash and ingestion never reads a partial file.

Trust: each written row says who vouches for its identifiers (`trust`, a landing contract column):
`server` (a server key), `signed` (a browser key with a valid identity token: the event carries the
token's identifier and no other) or `browser` (a browser key without one: anyone can send it, so
dbt ties it to its anonymous device only). Clients cannot set `trust` themselves.

Replays: an event id among the last 200,000 written is answered `duplicate` and not written again,
also after a restart (the writer reads the newest files back when it starts); the warehouse drops
older replays anyway (dbt keeps the first copy of an `event_id`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from activations.ingest.contract import SOURCES
from activations.serve.normalize import MAX_IDENTIFIER, normalize_identifier

EVENTS = next(s for s in SOURCES if s.name == "events")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_started", "identify", "login", "form_submit",
               "app_open", "message_displayed", "message_clicked", "message_dismissed")
MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 500
MAX_EVENT_BYTES = 16 << 10
MAX_TEXT = 2048
MAX_AGE = timedelta(days=30)
MAX_AHEAD = timedelta(minutes=5)
IDENTIFYING = ("anonymous_id", "user_id", "email", "phone")
INLINE_VALIDATION = 20  # events per request validated on the event loop
TRUST_LEVELS = ("server", "signed", "browser")
# The columns a client may send: `trust` is the server's to write.
_COLUMNS = {c.name: c for c in EVENTS.columns if c.name != "trust"}
# The event field each identity token type fills (user_id is the shop's customer id).
_TOKEN_FIELDS = {"email": "email", "phone": "phone", "shop_customer_id": "user_id"}


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
    try:
        encoded = orjson.dumps(event)
    except orjson.JSONEncodeError:  # nested deeper than the encoder recurses (hundreds of levels)
        return None, "nested too deeply (event fields are flat values)"
    if len(encoded) > MAX_EVENT_BYTES:
        return None, f"event larger than {MAX_EVENT_BYTES} bytes"
    unknown = event.keys() - _COLUMNS.keys()
    if unknown:
        return None, f"unknown field(s): {', '.join(sorted(unknown))} (the landing contract's events columns only)"
    for name, column in _COLUMNS.items():
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
    long_ids = [k for k in IDENTIFYING if len(event.get(k) or "") > MAX_IDENTIFIER]
    if long_ids:
        return None, f"{long_ids[0]} longer than {MAX_IDENTIFIER} characters"
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


def vouch(row: dict, trust: str, identity: tuple[str, str] | None = None) -> tuple[dict | None, str | None]:
    """The row stamped with its `trust`; a signed event gets the token's identifier and may carry no
    other (an email, phone or user id the token does not sign would tie someone else to the device)."""
    if trust == "signed" and identity:
        id_type, value = identity
        field = _TOKEN_FIELDS[id_type]
        for other in ("email", "phone", "user_id"):
            given = row.get(other)
            if given is None or given == "":
                continue
            if other != field:
                return None, f"{other} is not the identity its token signs ({id_type}): send it from your server"
            if normalize_identifier(id_type, given) != normalize_identifier(id_type, value):
                return None, f"{other} differs from the identity its token signs"
        row = {**row, field: value}
    return {**row, "trust": trust}, None


class EventWriter:
    """Appends accepted events to the landing folder, durably, and remembers the ids it wrote.

    `append` (the API, on its event loop) commits in groups: the first request writes at once; the
    requests that arrive while its file is written and fsync'ed share the next file and fsync, so a
    burst of single events costs a few fsyncs rather than one each, and no thread hop per request.
    `write` is the plain synchronous path for callers outside a server (one file per call).
    """

    def __init__(self, landing: Path | str, remember: int = 200_000):
        self.landing = Path(landing)
        self.folder = self.landing / EVENTS.folder / "api"
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()  # `write` may be called from several threads
        self._queued: list[tuple[list[dict], asyncio.Future]] = []
        self._in_flight: set[str] = set()  # ids queued or being written: a replay of them is a duplicate too
        self._flusher: asyncio.Task | None = None
        self._remember_written()

    def _remember_written(self) -> None:
        """Load the newest ids already written, so a client retrying across a restart gets `duplicate`."""
        if not self.folder.is_dir():
            return
        newest_first: list[str] = []
        for day in sorted((d for d in self.folder.iterdir() if d.is_dir()), reverse=True):
            for path in sorted(day.glob("events-*.jsonl"), reverse=True):  # names sort by write time
                for line in reversed(path.read_bytes().splitlines()):
                    try:
                        newest_first.append(orjson.loads(line)["event_id"])
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        continue  # not ours to judge here: ingestion quarantines it
                if len(newest_first) >= self._remember:
                    break
            if len(newest_first) >= self._remember:
                break
        self._note(reversed(newest_first[: self._remember]))

    def _note(self, event_ids) -> None:
        with self._lock:
            for event_id in event_ids:
                self._seen[event_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)

    def is_duplicate(self, event_id: str) -> bool:
        return event_id in self._in_flight or event_id in self._seen

    def write(self, rows: list[dict]) -> Path | None:
        """Write the rows now; return the file once it is on disk (None when there was nothing to write)."""
        if not rows:
            return None
        path = self._write_file(rows)
        self._note(r["event_id"] for r in rows)
        return path

    async def append(self, rows: list[dict]) -> Path | None:
        """Queue the rows for the next group commit; return the file once they are on disk."""
        if not rows:
            return None
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._in_flight.update(r["event_id"] for r in rows)
        self._queued.append((rows, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(done)  # a caller that hangs up does not cancel the others' write

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queued:
            group, self._queued = self._queued, []
            rows = [r for rows, _ in group for r in rows]
            try:
                path = await loop.run_in_executor(None, self._write_file, rows)
            except Exception as exc:  # every request of the group learns it was not written
                self._in_flight.difference_update(r["event_id"] for r in rows)
                for _, done in group:
                    done.set_exception(exc)
                continue
            self._note(r["event_id"] for r in rows)
            self._in_flight.difference_update(r["event_id"] for r in rows)
            for _, done in group:
                done.set_result(path)

    def _write_file(self, rows: list[dict]) -> Path:
        return write_landing_file(self.folder, rows, "events")


def write_landing_file(folder: Path, rows: list[dict], prefix: str) -> Path:
    """Write `rows` as JSON lines to `folder/<UTC date>/<prefix>-<time>-<random>.jsonl`, durably: a hidden
    temporary file (ingestion skips dot files), fsync'ed, renamed into place, the folder fsync'ed."""
    now = datetime.now(UTC)
    folder = folder / now.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{now.strftime('%H%M%S%f')}-{uuid.uuid4().hex[:8]}.jsonl"
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
    return folder / name


def _events_of(body) -> list:
    events = body.get("events") if isinstance(body, dict) and "events" in body else body
    return events if isinstance(events, list) else [events]


def validate_body(body, now: datetime, trust: str = "server",
                  identity: tuple[str, str] | None = None) -> list[tuple[int, str | None, dict | None, str | None]]:
    """(index, event_id, row or None, reason refused) for every event of a request body, each row
    stamped with `trust` (see `vouch`)."""
    checked = []
    for i, event in enumerate(_events_of(body)):
        row, reason = validate_event(event, now)
        if row is not None:
            row, reason = vouch(row, trust, identity)
        event_id = event.get("event_id") if isinstance(event, dict) and isinstance(event.get("event_id"), str) else None
        checked.append((i, event_id, row, reason))
    return checked


def admit(checked: list[tuple[int, str | None, dict | None, str | None]],
          writer: EventWriter) -> tuple[list[Outcome], list[dict]]:
    """The outcome of each validated event and the rows to write: replays (in the request, written
    or being written) are duplicates. Runs on the event loop, so two requests cannot both admit an id."""
    outcomes: list[Outcome] = []
    rows: list[dict] = []
    in_request: set[str] = set()
    for i, event_id, row, reason in checked:
        if row is None:
            outcomes.append(Outcome(i, event_id, "rejected", reason))
        elif row["event_id"] in in_request or writer.is_duplicate(row["event_id"]):
            outcomes.append(Outcome(i, event_id, "duplicate"))
        else:
            in_request.add(row["event_id"])
            rows.append(row)
            outcomes.append(Outcome(i, event_id, "accepted"))
    return outcomes, rows


async def collect(body, now: datetime, writer: EventWriter, trust: str = "server",
                  identity: tuple[str, str] | None = None) -> list[Outcome]:
    """Validate every event of a request body (one event, a list, or {"events": [...]}), write the good
    ones durably, stamped with `trust`, and return each event's outcome. Small bodies are validated on
    the loop (tens of microseconds); big batches in a worker thread, so they do not hold up lookups."""
    if len(_events_of(body)) <= INLINE_VALIDATION:
        checked = validate_body(body, now, trust, identity)
    else:
        checked = await asyncio.get_running_loop().run_in_executor(None, validate_body, body, now, trust, identity)
    outcomes, rows = admit(checked, writer)
    await writer.append(rows)
    return outcomes
