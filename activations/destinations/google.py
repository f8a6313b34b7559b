"""Google Data Manager API (the Customer Match successor): `audienceMembers:ingest` and `:remove`.

One request carries up to 10,000 members, each with up to 10 hashed identifiers
(email: all whitespace stripped and lower-cased; phone: E.164), HEX encoded,
with the consent the members gave. The API answers with a `requestId` only:
rows are confirmed when the request is accepted. A 400 that names members
(`audience_members[i]` in `fieldViolations`) refuses the batch with those rows
named, so the engine can set them aside; a 429 `RESOURCE_EXHAUSTED` is the
300 requests/min project quota.

Match rate: Google reports, per request, how many of the uploaded records it matched to its
users, as a range (`requestStatus:retrieve`, `uploadMatchRateRange`, e.g. 51-60 %). At the end
of a run `upload_report` asks for the status of up to MAX_STATUS_LOOKUPS of the run's ingest
requests (evenly spread, so a 100-request run costs 25 calls, not 100) and returns the range
weighted by the records each carried. Requests Google is still processing, or too small to be
eligible, are left out; when none has a range yet the run records none.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

import polars as pl
import requests

from activations.destinations.base import (
    BatchPart,
    BatchRefused,
    Capabilities,
    DestinationConfigError,
    Operation,
    RetryableError,
    RowResult,
    UploadReport,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpClient,
    HttpDestination,
    RollingWindow,
    response_json,
    retry_after_header,
)

MAX_IDENTIFIERS = 10
IDENTIFIER_FIELDS = {"email": "emailAddress", "phone": "phoneNumber"}
CONSENT_VALUES = ("CONSENT_GRANTED", "CONSENT_DENIED")
MEMBER_INDEX = re.compile(r"audience_?[mM]embers\[(\d+)\]")
WINDOW_SECONDS = 60.0
MAX_STATUS_LOOKUPS = 25  # requestStatus calls per run; they count against the same 300/min quota
MATCH_RANGE = re.compile(r"MATCH_RATE_RANGE_(?:(\d+)_TO_(\d+)|LESS_THAN_(\d+))$")


class GoogleDestination(HttpDestination):
    """Members of one Customer Match user list, through the Data Manager API."""

    type = "google"
    options = {
        "operating_account_id": Option(str, required=True, help="the Google Ads customer id that owns the list"),
        "operating_account_type": Option(str, default="GOOGLE_ADS", choices=("GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER")),
        "login_account_id": Option(str, help="manager account the credentials act through, when not the operating one"),
        "user_list_id": Option(str, required=True, help="the Customer Match user list (productDestinationId)"),
        # Consent is stated, never assumed: the audience's SQL must only select people who gave it.
        "ad_user_data_consent": Option(str, required=True, choices=CONSENT_VALUES),
        "ad_personalization_consent": Option(str, required=True, choices=CONSENT_VALUES),
        "validate_only": Option(bool, default=False, help="ask Google to validate without applying"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.destinations, self.consent = destination_and_consent(config, "user_list_id")
        self.validate_only = bool(config.get("validate_only", False))
        self.window = RollingWindow(WINDOW_SECONDS)
        self._requests: list[str] = []  # ingest request ids since the last upload_report
        self._requests_lock = threading.Lock()

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=10_000,
            requests_per_window=300,
            window_seconds=WINDOW_SECONDS,
            max_concurrency=4,
            modes=frozenset({"upsert", "mirror", "full_resync"}),
            identifiers=("email", "phone"),
            hashing="sha256",
            idempotent_writes=True,
            email_normalization="strip_whitespace",
            phone_format="e164",
            accepts_fields=False,
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Ingest members into (upsert) or remove them from (remove) the user list."""
        if batch.height == 0:
            return []
        kinds = [kind for kind in IDENTIFIER_FIELDS if kind in batch.columns]
        if not kinds:
            raise ValueError(f"google: batch has no email or phone column; it has {batch.columns}")
        members: list[dict[str, Any]] = []
        positions: list[int] = []  # member index -> row index
        results: list[RowResult | None] = [None] * batch.height
        for i, row in enumerate(batch.select(kinds).iter_rows()):
            identifiers = [{IDENTIFIER_FIELDS[k]: v} for k, v in zip(kinds, row, strict=True) if v]
            if not identifiers:
                results[i] = RowResult(False, None, "google: no identifier")
                continue
            members.append({"userData": {"userIdentifiers": identifiers[:MAX_IDENTIFIERS]}})
            positions.append(i)
        if members:
            body: dict[str, Any] = {
                "destinations": self.destinations,
                "audienceMembers": members,
                "encoding": "HEX",
                "validateOnly": self.validate_only,
            }
            if operation == "upsert":
                body["consent"] = self.consent
            path = "/v1/audienceMembers:ingest" if operation == "upsert" else "/v1/audienceMembers:remove"
            self.window.record()
            response = self.http.request("POST", path, json_body=body)
            if response.status_code >= 400:
                raise_data_manager_error(self.http, self.window, response, positions)
            request_id = (response_json(response) or {}).get("requestId")
            if operation == "upsert" and isinstance(request_id, str) and not self.validate_only:
                with self._requests_lock:
                    self._requests.append(request_id)
            for i in positions:
                results[i] = RowResult(True, response.status_code, None, None)
        return [r for r in results if r is not None]

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Take the people out of the user list: the only deletion the platform offers an advertiser."""
        return self.send("remove", rows)

    def upload_report(self) -> UploadReport | None:
        """The match rate range Google reported for the ingest requests since the last call, weighted by
        their records; None when none reported one (yet)."""
        with self._requests_lock:
            requests_made, self._requests = self._requests, []
        if not requests_made:
            return None
        step = max(1, -(-len(requests_made) // MAX_STATUS_LOOKUPS))
        records = low = high = 0.0
        for request_id in requests_made[::step]:
            self.window.record()
            response = self.http.request("GET", "/v1/requestStatus:retrieve", params={"requestId": request_id})
            if response.status_code != 200:
                continue  # over quota or unknown: this request's rate is left out
            for status in (response_json(response) or {}).get("requestStatusPerDestination") or []:
                ingested = ((status.get("audienceMembersIngestionStatus") or {}).get("userDataIngestionStatus")
                            or {}) if status.get("requestStatus") in ("SUCCESS", "PARTIAL_SUCCESS") else {}
                bounds = _match_range(ingested.get("uploadMatchRateRange"))
                count = int(ingested.get("recordCount") or 0)
                if bounds is not None and count:
                    records += count
                    low += bounds[0] * count
                    high += bounds[1] * count
        if not records:
            return None
        return UploadReport(match_rate_low=round(low / records, 4), match_rate_high=round(high / records, 4))


def destination_and_consent(config: DestinationConfig, product_destination_option: str
                            ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The request's `destinations` (the operating account's product destination `product_destination_option`
    names: a user list, a conversion action) and the `consent` its options state."""
    account_type = config.get("operating_account_type")
    destination: dict[str, Any] = {
        "operatingAccount": {"accountType": account_type, "accountId": config.require("operating_account_id")},
        "productDestinationId": config.require(product_destination_option),
    }
    if config.get("login_account_id"):
        destination["loginAccount"] = {"accountType": account_type, "accountId": config.get("login_account_id")}
    consent = {
        "adUserData": config.require("ad_user_data_consent"),
        "adPersonalization": config.require("ad_personalization_consent"),
    }
    return [destination], consent


def raise_data_manager_error(http: HttpClient, window: RollingWindow, response: requests.Response,
                             positions: list[int], record_index: re.Pattern[str] = MEMBER_INDEX,
                             label: str = "google", set_aside: Mapping[int, str] | None = None) -> None:
    """Raise what a failed Data Manager answer means: wait (429 RESOURCE_EXHAUSTED, 5xx), stop (auth) or
    refuse the batch, naming the rows whose records (`record_index` in a `fieldViolations` field, the
    record's position in the request; `positions` maps it to the row's in the batch) Google refused, and
    with them the rows the client `set_aside` before sending, when Google named any."""
    body = response_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    status_name = error.get("status", "")
    message = f"{status_name}: {error.get('message', '')}" if status_name else None
    reason = http.reason(response, message)
    details = error.get("details") or []
    if response.status_code == 429 or status_name == "RESOURCE_EXHAUSTED":
        retry_after = retry_after_header(response) or _retry_delay(details) or window.rest_of_window()
        raise RetryableError(reason, response.status_code, retry_after)
    if status_name in ("UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED") or response.status_code >= 500:
        raise RetryableError(reason, response.status_code, retry_after_header(response) or _retry_delay(details))
    if status_name in ("UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND") or response.status_code in (401, 403, 404):
        raise DestinationConfigError(reason, response.status_code)
    rejected: dict[int, str] = {}
    for detail in details:
        violations = detail.get("fieldViolations") if isinstance(detail, dict) else None
        for violation in violations or []:
            match = record_index.search(str(violation.get("field", "")))
            if match and int(match.group(1)) < len(positions):
                text = http.redact(f"{label}: {violation.get('description') or violation.get('reason') or 'invalid'}")
                rejected[positions[int(match.group(1))]] = text[:300]
    if rejected and set_aside:
        rejected.update(set_aside)
    raise BatchRefused(reason, response.status_code, rejected)


def _match_range(value: Any) -> tuple[float, float] | None:
    """`MATCH_RATE_RANGE_51_TO_60` as (0.51, 0.60), `..._LESS_THAN_20` as (0, 0.20); None for
    UNKNOWN and NOT_ELIGIBLE."""
    match = MATCH_RANGE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    if match.group(3):
        return 0.0, int(match.group(3)) / 100
    return int(match.group(1)) / 100, int(match.group(2)) / 100


def _retry_delay(details: list[Any]) -> float | None:
    """`google.rpc.RetryInfo.retryDelay` ("30s") in seconds, when the error carries one."""
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                continue
    return None
