"""Google Data Manager API: conversions sent server-side to one Google Ads conversion action,
`POST /v1/events:ingest`.

Each row is one `Event`: `transactionId` (the sync's key unless a field maps it: the order id the
shop's Google tag sends as `transaction_id` too, so Google counts the purchase once), `eventTimestamp`
(RFC 3339, UTC), `eventSource` (WEB, APP, IN_STORE, PHONE, OTHER), `conversionValue` and `currency`,
`adIdentifiers.gclid` when the row has a click id, and `userData.userIdentifiers`: email and phone
normalized and SHA-256 hashed by the engine, HEX encoded, at most 10. The request states the consent
(`adUserData`, `adPersonalization`) of everyone in it; the conversions model selects only customers
with ads consent. At most 2,000 events a request; 300 requests a minute per project, past it 429
`RESOURCE_EXHAUSTED`, waited out.

The Data Manager API fails fast: one invalid event refuses the whole request (400 `INVALID_ARGUMENT`)
and nothing of it is processed; its `google.rpc.BadRequest` names every invalid event
(`events.events[i]...`). Rows that would be refused are set aside before sending, with the reason;
when Google still refuses a request, the events it names are rejected with its reason and the rest
sent again. A row counts as sent when the request is accepted (`requestId`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import polars as pl

from activations.destinations.base import KEY_COLUMN, BatchPart, Capabilities, Operation, RowResult
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.google import (
    CONSENT_VALUES,
    IDENTIFIER_FIELDS,
    MAX_IDENTIFIERS,
    destination_and_consent,
    raise_data_manager_error,
)
from activations.destinations.identifiers import SHA256_HEX_PATTERN
from activations.destinations.transport import HttpDestination, RollingWindow, json_value, unix_seconds

MAX_EVENTS = 2_000  # Event resources per IngestEventsRequest
WINDOW_SECONDS = 60.0
REQUESTS_PER_WINDOW = 300  # per Google Cloud project
FUTURE_SLACK_SECONDS = 60
EVENT_SOURCES = frozenset({"WEB", "APP", "IN_STORE", "PHONE", "MESSAGE", "OTHER"})
REQUIRED_FIELDS = ("event_timestamp",)
EVENT_INDEX = re.compile(r"events\[(\d+)\]")


class GoogleConversionsDestination(HttpDestination):
    """Conversions sent to one Google Ads conversion action through the Data Manager API, each once."""

    type = "google_conversions"
    options = {
        "operating_account_id": Option(str, required=True, help="the Google Ads customer id that owns the action"),
        "operating_account_type": Option(str, default="GOOGLE_ADS", choices=("GOOGLE_ADS",)),
        "login_account_id": Option(str, help="manager account the credentials act through, when not the operating one"),
        "conversion_action_id": Option(str, required=True, help="the conversion action (productDestinationId)"),
        # Consent is stated, never assumed: the conversions model selects only customers who gave ads consent.
        "ad_user_data_consent": Option(str, required=True, choices=CONSENT_VALUES),
        "ad_personalization_consent": Option(str, required=True, choices=CONSENT_VALUES),
        "validate_only": Option(bool, default=False, help="ask Google to validate without applying"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.destinations, self.consent = destination_and_consent(config, "conversion_action_id")
        self.validate_only = bool(config.get("validate_only", False))
        self.window = RollingWindow(WINDOW_SECONDS)

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=MAX_EVENTS,
            requests_per_window=REQUESTS_PER_WINDOW,
            window_seconds=WINDOW_SECONDS,
            max_concurrency=4,
            modes=frozenset({"insert"}),  # a conversion is sent once, never updated or removed
            identifiers=tuple(IDENTIFIER_FIELDS),
            hashing="sha256",
            # Google counts one conversion per transactionId: an event sent again after a lost answer is
            # not counted twice, so a 5xx or a timeout is retried within the run.
            idempotent_writes=True,
            email_normalization="strip_whitespace",
            phone_format="e164",
            required_fields=REQUIRED_FIELDS,
            keyed_by_identifiers=False,  # Google knows a conversion by its transactionId, not a person
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Ingest the rows as events; one result per row, ok when Google accepted the request."""
        if operation != "upsert":
            raise ValueError(f"google_conversions: events are only ever sent, never {operation}d")
        if batch.height == 0:
            return []
        events, problems = self._events(batch)
        results: list[RowResult | None] = [
            RowResult(False, None, f"google_conversions: {problem}") if problem else None for problem in problems
        ]
        sendable = [i for i, problem in enumerate(problems) if problem is None]
        if not sendable:
            return results  # type: ignore[return-value]
        body: dict[str, Any] = {
            "destinations": self.destinations,
            "events": [events[i] for i in sendable],
            "consent": self.consent,
            "encoding": "HEX",
            "validateOnly": self.validate_only,
        }
        self.window.record()
        response = self.http.request("POST", "/v1/events:ingest", json_body=body)
        if response.status_code >= 400:
            # Google processed none of the request: the events it names are rejected, with every row refused here.
            set_aside = {i: str(r.reason) for i, r in enumerate(results) if r is not None}
            raise_data_manager_error(self.http, self.window, response, sendable, EVENT_INDEX, "google_conversions",
                                     set_aside)
        for i in sendable:
            results[i] = RowResult(True, response.status_code)
        return results  # type: ignore[return-value]

    def _events(self, batch: pl.DataFrame) -> tuple[list[dict[str, Any] | None], list[str | None]]:
        """The Event of each row, or why Google would refuse it (and the whole request with it)."""
        missing = [f for f in REQUIRED_FIELDS if f not in batch.columns]
        if missing:
            raise ValueError(f"google_conversions: batch lacks the fields {missing}; it has {batch.columns}")
        kinds = [kind for kind in IDENTIFIER_FIELDS if kind in batch.columns]
        frame = batch.with_columns(unix_seconds(batch, "event_timestamp").alias("event_timestamp"))
        now = time.time()
        events: list[dict[str, Any] | None] = []
        problems: list[str | None] = []
        for row in frame.iter_rows(named=True):
            identifiers = [{IDENTIFIER_FIELDS[k]: row[k]} for k in kinds if row[k]]
            transaction_id = row.get("transaction_id") if row.get("transaction_id") is not None else row.get(KEY_COLUMN)
            event: dict[str, Any] = {"transactionId": "" if transaction_id is None else str(transaction_id)}
            if row["event_timestamp"] is not None:
                event["eventTimestamp"] = _rfc3339(row["event_timestamp"])
            if identifiers:
                event["userData"] = {"userIdentifiers": identifiers[:MAX_IDENTIFIERS]}
            if row.get("gclid"):
                event["adIdentifiers"] = {"gclid": str(row["gclid"])}
            if row.get("event_source") is not None:
                event["eventSource"] = str(row["event_source"]).upper()
            if row.get("conversion_value") is not None:
                event["conversionValue"] = json_value(row["conversion_value"])
            if row.get("currency") is not None:
                event["currency"] = str(row["currency"]).upper()
            problem = _problem(event, row["event_timestamp"], now)
            events.append(None if problem else event)
            problems.append(problem)
        return events, problems


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _problem(event: dict[str, Any], seconds: int | None, now: float) -> str | None:
    """What Google would refuse in this event; None when it is valid."""
    if seconds is None:
        return "event_timestamp is required (a timestamp, epoch seconds or ISO 8601)"
    if seconds > now + FUTURE_SLACK_SECONDS:
        return "event_timestamp is in the future"
    if not event["transactionId"]:
        return "transaction_id is required: Google deduplicates conversions by it"
    if "userData" not in event and "adIdentifiers" not in event:
        return "no user identifier and no gclid: every identifier is missing or invalid"
    for identifier in event.get("userData", {}).get("userIdentifiers", []):
        for key, value in identifier.items():
            if not (isinstance(value, str) and re.fullmatch(SHA256_HEX_PATTERN, value)):
                return f"userData.{key} is not a SHA-256 hex digest (not normalized and hashed?)"
    if "eventSource" in event and event["eventSource"] not in EVENT_SOURCES:
        return f"event_source {event['eventSource']!r} is not one of {', '.join(sorted(EVENT_SOURCES))}"
    value = event.get("conversionValue")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        return "conversion_value must be a number"
    currency = event.get("currency")
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        return "currency must be a three-letter ISO 4217 code"
    return None
