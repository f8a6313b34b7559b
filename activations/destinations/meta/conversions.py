"""Meta Conversions API: conversions sent server-side to one pixel (dataset), `POST /{version}/{pixel_id}/events`.

Each row is one server event: `event_name`, `event_time` (sent as Unix seconds), `event_id` (the
sync's key unless a field maps it: the id the shop's browser pixel sends too, so Meta counts the
purchase once), `action_source`, `user_data` (identifiers normalized and SHA-256 hashed by the engine,
`external_id` too, as Meta recommends) and `custom_data` (every other mapped field: `value`,
`currency`, ...). At most 1,000 events a request.

Meta refuses the whole request when one event is invalid (an `event_time` older than 7 days, a
field missing) and processes none of it. Rows that would be refused are set aside before sending,
with the reason Meta would give; when Meta still refuses a request, the event its error names
(`error_data.event_index`, or `data[N]` in its message) is rejected with Meta's reason and the
rest are sent again (the engine halves the batch when the error names none). A row counts as sent
only when Meta's answer says it received every event of the request (`events_received`).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import polars as pl
import requests

from activations.destinations.base import (
    KEY_COLUMN,
    BatchPart,
    Capabilities,
    Operation,
    RowResult,
    UploadReport,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.identifiers import SHA256_HEX_PATTERN
from activations.destinations.meta.graph import API_VERSION_OPTION, api_version, graph_error, raise_graph_error
from activations.destinations.transport import HttpDestination, json_value, response_json, unix_seconds

MAX_EVENTS = 1_000  # events per request
MAX_AGE_SECONDS = 7 * 24 * 3600  # an older event_time refuses the whole request
FUTURE_SLACK_SECONDS = 60  # clocks differ a little; an event from the future is refused
# Identifier kind -> Conversions API user_data key.
USER_DATA_KEYS: dict[str, str] = {
    "email": "em",
    "phone": "ph",
    "first_name": "fn",
    "last_name": "ln",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "country": "country",
    "gender": "ge",
    "external_id": "external_id",
}
# Mapped fields that are parameters of the server event itself; any other field goes into custom_data.
EVENT_FIELDS = ("event_name", "event_time", "event_id", "action_source", "event_source_url")
REQUIRED_FIELDS = ("event_name", "event_time", "action_source")
ACTION_SOURCES = frozenset({"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
                            "business_messaging", "other"})
_INDEX_IN_MESSAGE = re.compile(r"data\[(\d+)\]")


class MetaConversionsDestination(HttpDestination):
    """Conversions sent to one Meta pixel (dataset) through the Conversions API, each once."""

    type = "meta_conversions"
    options = {
        "pixel_id": Option(str, required=True, help="the pixel (dataset) id the events are sent to"),
        "api_version": API_VERSION_OPTION,
        "test_event_code": Option(str, help="Meta's Test Events code: events show in Test Events, not in reports"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.path = f"/{api_version(config)}/{config.require('pixel_id')}/events"
        self.test_event_code = config.get("test_event_code")
        self._received = [0, 0]  # answers counted, events_received (since the last report)
        self._received_lock = threading.Lock()

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=MAX_EVENTS,
            requests_per_window=None,  # Meta publishes no fixed pace; it signals throttling with Graph codes
            window_seconds=None,
            max_concurrency=4,
            modes=frozenset({"insert"}),  # a conversion is sent once, never updated or removed
            identifiers=tuple(USER_DATA_KEYS),
            hashing="sha256",
            # A 5xx or a timeout may come after Meta took the events: not resent within the run. The next run
            # sends them again with the same event_id, which Meta uses to count a purchase once.
            idempotent_writes=False,
            phone_format="digits",  # digits with the country code, no "+"
            clear_identifiers=frozenset(),  # external_id hashed too ("hashing recommended")
            required_fields=REQUIRED_FIELDS,
            keyed_by_identifiers=False,  # Meta knows an event by its event_id, not a person by identifiers
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Send the rows as server events; one result per row, ok only when Meta received every event."""
        if operation != "upsert":
            raise ValueError(f"meta_conversions: events are only ever sent, never {operation}d")
        if batch.height == 0:
            return []
        events, problems = self._events(batch)
        results: list[RowResult | None] = [
            RowResult(False, None, f"meta_conversions: {problem}") if problem else None for problem in problems
        ]
        sendable = [i for i, problem in enumerate(problems) if problem is None]
        if not sendable:
            return results  # type: ignore[return-value]
        body: dict[str, Any] = {"data": [events[i] for i in sendable]}
        if self.test_event_code:
            body["test_event_code"] = self.test_event_code
        response = self.http.request("POST", self.path, json_body=body)
        if response.status_code >= 400:
            # Meta processed none of the request: the event it names is rejected, with every row refused here.
            named = {i: str(results[i].reason) for i in range(batch.height) if results[i] is not None}  # type: ignore[union-attr]
            index = _failing_event(response)
            if index is not None and 0 <= index < len(sendable):
                named[sendable[index]] = self.http.reason(response, _message(response))
            raise_graph_error(self.http, response, named if index is not None else None)
        answer = response_json(response) or {}
        received = answer.get("events_received") if isinstance(answer, dict) else None
        if isinstance(received, int):
            with self._received_lock:
                self._received[0] += 1
                self._received[1] += received
        if received == len(sendable):
            verdict = RowResult(True, response.status_code)
        else:
            verdict = RowResult(False, response.status_code, f"meta_conversions: Meta said events_received "
                                                             f"{received!r} for {len(sendable)} events sent")
        for i in sendable:
            results[i] = verdict
        return results  # type: ignore[return-value]

    def _events(self, batch: pl.DataFrame) -> tuple[list[dict[str, Any] | None], list[str | None]]:
        """The server event of each row, or why Meta would refuse it (and the whole request with it)."""
        missing = [f for f in REQUIRED_FIELDS if f not in batch.columns]
        if missing:
            raise ValueError(f"meta_conversions: batch lacks the fields {missing}; it has {batch.columns}")
        kinds = [kind for kind in USER_DATA_KEYS if kind in batch.columns]
        custom = [c for c in self.field_columns(batch) if c not in EVENT_FIELDS]
        frame = batch.with_columns(unix_seconds(batch, "event_time").alias("event_time"))
        now = time.time()
        events: list[dict[str, Any] | None] = []
        problems: list[str | None] = []
        for row in frame.iter_rows(named=True):
            user_data = {USER_DATA_KEYS[k]: [row[k]] for k in kinds if row[k] is not None}
            event = {
                "event_name": row["event_name"],
                "event_time": row["event_time"],
                "event_id": str(row["event_id"] if row.get("event_id") is not None else row.get(KEY_COLUMN)),
                "action_source": row["action_source"],
                "user_data": user_data,
            }
            if row.get("event_source_url") is not None:
                event["event_source_url"] = row["event_source_url"]
            custom_data = {name: json_value(row[name]) for name in custom if row[name] is not None}
            if custom_data:
                event["custom_data"] = custom_data
            problem = _problem(event, now)
            events.append(None if problem else event)
            problems.append(problem)
        return events, problems

    def upload_report(self) -> UploadReport | None:
        """Events Meta said it received since the last call (None if it said nothing)."""
        with self._received_lock:
            answers, received = self._received
            self._received = [0, 0]
        return UploadReport(received=received) if answers else None


def _problem(event: dict[str, Any], now: float) -> str | None:
    """What Meta would refuse in this event, in its words; None when it is valid."""
    if not event["event_name"]:
        return "event_name is required"
    event_time = event["event_time"]
    if event_time is None:
        return "event_time is required (a timestamp, epoch seconds or ISO 8601)"
    if event_time < now - MAX_AGE_SECONDS:
        return "event_time is more than 7 days in the past: Meta refuses events that old"
    if event_time > now + FUTURE_SLACK_SECONDS:
        return "event_time is in the future"
    if event["action_source"] not in ACTION_SOURCES:
        return f"action_source {event['action_source']!r} is not one of {', '.join(sorted(ACTION_SOURCES))}"
    if not event["user_data"]:
        return "no customer information: every identifier is missing or invalid"
    for key, values in event["user_data"].items():
        if not all(isinstance(v, str) and re.fullmatch(SHA256_HEX_PATTERN, v) for v in values):
            return f"user_data.{key} is not a SHA-256 hex digest (not normalized and hashed?)"
    return None


def _failing_event(response: requests.Response) -> int | None:
    """The position in `data` of the event that made Meta refuse the request, when its error says."""
    error = graph_error(response) or {}
    data = error.get("error_data")
    if isinstance(data, dict) and isinstance(data.get("event_index"), int):
        return data["event_index"]
    for text in (error.get("error_user_msg"), error.get("message")):
        found = _INDEX_IN_MESSAGE.search(text) if isinstance(text, str) else None
        if found:
            return int(found.group(1))
    return None


def _message(response: requests.Response) -> str:
    error = graph_error(response) or {}
    return str(error.get("error_user_msg") or error.get("message") or "")
