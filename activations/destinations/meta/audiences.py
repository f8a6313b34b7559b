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

Graph errors (rate limits, transient, auth) are read by `graph.raise_graph_error`, shared with
the Conversions API client.
"""

from __future__ import annotations

import threading
from hashlib import blake2b
from typing import Any

import polars as pl

from activations.destinations.base import (
    UNHASHED_KINDS,
    BatchPart,
    Capabilities,
    Operation,
    RowResult,
    UploadReport,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.meta.graph import API_VERSION_OPTION, api_version, raise_graph_error
from activations.destinations.transport import HttpDestination, response_json

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


class MetaDestination(HttpDestination):
    """Users of one Meta custom audience."""

    type = "meta"
    options = {
        "audience_id": Option(str, required=True, help="the custom audience id"),
        "api_version": API_VERSION_OPTION,
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.audience_id = config.require("audience_id")
        self.path = f"/{api_version(config)}/{self.audience_id}/users"
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
            raise_graph_error(self.http, response)
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
