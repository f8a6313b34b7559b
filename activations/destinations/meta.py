"""Meta (Facebook) Custom Audiences: add with `POST`, remove with `DELETE` on `/{version}/{audience_id}/users`.

The schema is built from the identifier columns present (`EMAIL`, `PHONE`, `FN`,
...), values already normalized and SHA-256 hashed by the engine (EXTERN_ID stays
clear), at most 10,000 rows a call. The parts of one upload share a multi-batch
session so Meta knows when the upload is complete.

Known limitation: Meta answers with counts and a *sample* of invalid entries, not
per-row results. Rows named by a sample are reported rejected; rows whose hashed
values are not 64-hex are rejected before sending; any further invalid entries
Meta counts cannot be traced to a row and those rows are reported sent. The counts
themselves (`num_received`, `num_invalid_entries`) are summed per run and recorded
(`upload_report`): sync health shows what Meta says it took.

Meta signals rate limits with Graph error codes (17, 613, 4, 32, 80003, 80004),
usually over HTTP 400, and says when access returns in `X-Business-Use-Case-Usage`
(`estimated_time_to_regain_access`, minutes).
"""

from __future__ import annotations

import json
import re
import threading
from hashlib import blake2b
from typing import Any

import polars as pl
import requests

from activations.destinations.base import (
    UNHASHED_KINDS,
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
from activations.destinations.transport import HttpDestination, response_json, retry_after_header

# Identifier kind -> Meta schema key, in the order the schema lists them.
SCHEMA_KEYS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "first_name": "FN",
    "last_name": "LN",
    "city": "CT",
    "state": "ST",
    "zip": "ZIP",
    "country": "COUNTRY",
    "gender": "GEN",
    "birth_year": "DOBY",
    "birth_month": "DOBM",
    "birth_day": "DOBD",
    "external_id": "EXTERN_ID",
}
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80003, 80004})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({10, 190, 200})
DEFAULT_RATE_LIMIT_WAIT = 60.0
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class MetaDestination(HttpDestination):
    """Users of one Meta custom audience."""

    type = "meta"
    options = {
        "audience_id": Option(str, required=True, help="the custom audience id"),
        "api_version": Option(str, default="v21.0", help="Graph API version, e.g. v21.0"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.audience_id = config.require("audience_id")
        version = str(config.get("api_version"))
        version = version if version.startswith("v") else f"v{version}"
        if not re.fullmatch(r"v\d+\.\d+", version):
            raise config.error("expected a Graph API version like v21.0", "api_version")
        self.path = f"/{version}/{self.audience_id}/users"
        self._sessions: dict[tuple[str, str], int] = {}
        self._sessions_lock = threading.Lock()
        self._reported = [0, 0, 0]  # answers counted, num_received, num_invalid_entries (since the last report)
        self._reported_lock = threading.Lock()

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=10_000,
            requests_per_window=None,  # Meta publishes no fixed pace; it signals throttling per business
            window_seconds=None,
            max_concurrency=4,
            modes=frozenset({"upsert", "mirror", "full_resync"}),
            identifiers=tuple(SCHEMA_KEYS),
            hashing="sha256",
            idempotent_writes=True,
            phone_format="digits",  # Meta: digits with country code, no "+"
            accepts_fields=False,
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Add rows to (upsert) or remove them from (remove) the audience; one result per row."""
        if batch.height == 0:
            return []
        kinds = [kind for kind in SCHEMA_KEYS if kind in batch.columns]
        if not kinds:
            raise ValueError(f"meta: batch has no identifier column; it has {batch.columns}")
        # Cells that cannot match (null, or a "hash" that is not 64-hex) go as "", Meta's "unknown".
        matrix = batch.select(
            pl.col(kind).cast(pl.String).fill_null("")
            if kind in UNHASHED_KINDS
            else pl.when(pl.col(kind).cast(pl.String).str.contains(r"^[0-9a-f]{64}$"))
            .then(pl.col(kind).cast(pl.String))
            .otherwise(pl.lit(""))
            .alias(kind)
            for kind in kinds
        ).rows()
        sendable = [i for i, row in enumerate(matrix) if any(row)]
        results: list[RowResult | None] = [None] * batch.height
        for i in set(range(batch.height)) - set(sendable):
            results[i] = RowResult(False, None, "meta: no identifier is a SHA-256 hex digest (not normalized+hashed?)")
        if not sendable:
            return [r for r in results if r is not None]

        body: dict[str, Any] = {
            "payload": {"schema": [SCHEMA_KEYS[k] for k in kinds], "data": [list(matrix[i]) for i in sendable]}
        }
        if part is not None:
            body["session"] = self._session(operation, part)
        method = "POST" if operation == "upsert" else "DELETE"
        response = self.http.request(method, self.path, json_body=body)
        if response.status_code >= 400:
            self._raise_for_error(response)
        answer = response_json(response) or {}
        self._count(answer)
        invalid = _sample_values(answer.get("invalid_entry_samples"))
        for i in sendable:
            # A sample quotes the offending value, or the whole row joined with "|".
            candidates = ["|".join(matrix[i]), *matrix[i]]
            bad = next((invalid[value] for value in candidates if value and value in invalid), None)
            if bad is not None:
                results[i] = RowResult(
                    False, response.status_code, self.http.redact(f"meta: invalid entry: {bad}")[:300]
                )
            else:
                results[i] = RowResult(True, response.status_code, None, None)
        return [r for r in results if r is not None]

    def _count(self, answer: dict[str, Any]) -> None:
        received, invalid = answer.get("num_received"), answer.get("num_invalid_entries")
        if isinstance(received, int):
            with self._reported_lock:
                self._reported[0] += 1
                self._reported[1] += received
                self._reported[2] += invalid if isinstance(invalid, int) else 0

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Take the people out of the audience: the only deletion the platform offers an advertiser."""
        return self.send("remove", rows)

    def upload_report(self) -> UploadReport | None:
        """Rows Meta said it received and found invalid since the last call (None if it said nothing)."""
        with self._reported_lock:
            answers, received, invalid = self._reported
            self._reported = [0, 0, 0]
        return UploadReport(received=received, invalid=invalid) if answers else None

    def _session(self, operation: str, part: BatchPart) -> dict[str, Any]:
        """The multi-batch session of this upload: one id for all its parts."""
        if part.run_id:
            digest = blake2b(f"{self.name}:{operation}:{part.run_id}".encode(), digest_size=8).digest()
            session_id = int.from_bytes(digest, "big") >> 1  # a positive int64
        else:
            key = (operation, "")
            with self._sessions_lock:
                if part.seq == 1 or key not in self._sessions:
                    digest = blake2b(
                        f"{self.name}:{operation}:{id(part)}:{threading.get_ident()}".encode(), digest_size=8
                    )
                    self._sessions[key] = int.from_bytes(digest.digest(), "big") >> 1
                session_id = self._sessions[key]
                if part.is_last:
                    self._sessions.pop(key, None)
        return {
            "session_id": session_id,
            "batch_seq": part.seq,
            "last_batch_flag": part.is_last,
            "estimated_num_total": part.total_rows,
        }

    def _raise_for_error(self, response: requests.Response) -> None:
        body = response_json(response)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            self.http.raise_for_status(response)
            return
        code = error.get("code")
        subcode = error.get("error_subcode")
        message = f"code {code}" + (f"/{subcode}" if subcode else "") + f": {error.get('message', '')}"
        reason = self.http.reason(response, message)
        if code in RATE_LIMIT_CODES:
            raise RetryableError(reason, response.status_code, _regain_access_seconds(response))
        if code in TRANSIENT_CODES or error.get("is_transient") or response.status_code >= 500:
            raise RetryableError(reason, response.status_code, retry_after_header(response))
        if code in AUTH_CODES or response.status_code in (401, 403, 404):
            raise DestinationConfigError(reason, response.status_code)
        raise BatchRefused(reason, response.status_code)


def _regain_access_seconds(response: requests.Response) -> float:
    """Seconds until Meta lifts the throttle, from `X-Business-Use-Case-Usage` (minutes)."""
    raw = response.headers.get("X-Business-Use-Case-Usage")
    minutes: list[float] = []
    try:
        usage = json.loads(raw) if raw else {}
    except ValueError:
        usage = {}
    if isinstance(usage, dict):
        for entries in usage.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                value = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
                if isinstance(value, int | float) and value > 0:
                    minutes.append(float(value))
    if minutes:
        return max(minutes) * 60.0
    return retry_after_header(response) or DEFAULT_RATE_LIMIT_WAIT


def _sample_values(samples: Any) -> dict[str, str]:
    """Meta's invalid entry samples as value -> reason (it sends a mapping or a list)."""
    found: dict[str, str] = {}
    if isinstance(samples, dict):
        for key, value in samples.items():
            if isinstance(value, str | int | float):
                found[str(key)] = str(value)
            elif isinstance(value, list):
                for item in value:
                    found[str(item)] = str(key)
    elif isinstance(samples, list):
        for item in samples:
            if isinstance(item, list):
                for value in item:
                    if value:
                        found[str(value)] = "invalid"
            elif item:
                found[str(item)] = "invalid"
    return found
