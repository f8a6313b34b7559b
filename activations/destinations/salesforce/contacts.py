"""Salesforce: sObject Collections upsert on an external id field.

`PATCH /services/data/v{version}/composite/sobjects/{SObject}/{ExternalIdField}`
with `allOrNone: false` and at most 200 records of one sObject type; the answer
is one result per record, in input order. Salesforce limits requests per rolling
24 h, not per second: `REQUEST_LIMIT_EXCEEDED` (a 403, not a 429) ends the sync
until the allocation frees up, so it is a `QuotaExhausted`, unless the header
`Sforce-Limit-Info` shows allocation left (then it is the concurrent-request
limit, which is transient).

Removal is not offered: taking a record out of an audience must not delete a CRM
record; model membership as a field (upserted) instead.

Erasure (`erase`) is the exception: `DELETE /services/data/v{version}/sobjects/{SObject}/{ExternalIdField}/{value}`
(sObject Rows by External ID), 204; 404 `NOT_FOUND`: no such record. Salesforce keeps a deleted record
in its Recycle Bin for 15 days before purging it (emptying it early needs a user with that permission).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import polars as pl
import requests

from activations.destinations.base import (
    BatchPart,
    Capabilities,
    DestinationConfigError,
    Operation,
    QuotaExhausted,
    RetryableError,
    RowResult,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpClient,
    HttpDestination,
    present_fields,
    require_columns,
    response_json,
    retry_after_header,
)

API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
CONCURRENT_RETRY_SECONDS = 5.0


class SalesforceDestination(HttpDestination):
    """Records of one sObject type, upserted on an external id field."""

    type = "salesforce"
    options = {
        "sobject": Option(str, required=True, help="sObject type, e.g. Contact"),
        "external_id_field": Option(
            str, required=True, help="the external id field upserts match on, e.g. Attiva_Id__c"
        ),
        "api_version": Option(str, default="62.0", help="REST API version, e.g. 62.0"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.sobject = config.require("sobject")
        self.external_id_field = config.require("external_id_field")
        version = str(config.get("api_version")).lstrip("v")
        if not re.fullmatch(r"\d+\.\d", version):
            raise config.error("expected a version like 62.0", "api_version")
        self.path = f"/services/data/v{version}/composite/sobjects/{self.sobject}/{self.external_id_field}"
        self.record_path = f"/services/data/v{version}/sobjects/{self.sobject}/{self.external_id_field}"

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=200,
            requests_per_window=None,  # a 24 h allocation per org, not a pace: the engine sees it as QuotaExhausted
            window_seconds=None,
            max_concurrency=4,  # long-running requests share the org's concurrency limit of 25
            modes=frozenset({"upsert", "full_resync"}),
            identifiers=("external_id",),
            hashing=None,
            idempotent_writes=True,
            required_identifiers=("external_id",),
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Upsert up to 200 records on the external id; one result per row, in order."""
        if operation != "upsert":
            raise self.config.error(
                f"{operation} is not offered: Salesforce records are upserted, never deleted by a sync"
            )
        if batch.height == 0:
            return []
        require_columns(batch, ["external_id"], self.type)
        fields = self.field_columns(batch)
        records = []
        for row in batch.select(["external_id", *fields]).iter_rows(named=True):
            record: dict[str, Any] = {"attributes": {"type": self.sobject}}
            record.update(present_fields(row, fields))
            record[self.external_id_field] = str(row["external_id"])
            records.append(record)

        response = self.http.request("PATCH", self.path, json_body={"allOrNone": False, "records": records})
        if response.status_code >= 400:
            raise_for_error(self.http, response)
        body = response_json(response)
        if not isinstance(body, list) or len(body) != batch.height:
            # Results are positional: a count mismatch means none of them can be trusted.
            got = len(body) if isinstance(body, list) else type(body).__name__
            raise RetryableError(
                self.http.reason(response, f"expected {batch.height} results, got {got}"), response.status_code
            )
        return [self._row_result(item, response.status_code) for item in body]

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Delete each record by its external id."""
        require_columns(rows, ["external_id"], self.type)
        results = []
        for value in rows["external_id"].to_list():
            if value is None or str(value) == "":
                results.append(RowResult(False, None, "salesforce: no external id to find the record by"))
                continue
            response = self.http.request("DELETE", f"{self.record_path}/{quote(str(value), safe='')}")
            if response.status_code == 404:
                results.append(RowResult(True, 404, "salesforce: no such record"))
            elif response.status_code >= 400:
                raise_for_error(self.http, response)
            else:
                results.append(RowResult(True, response.status_code))
        return results

    def _row_result(self, item: dict[str, Any], status: int) -> RowResult:
        record_id = item.get("id")
        if item.get("success"):
            return RowResult(True, status, None, str(record_id) if record_id else None)
        errors = item.get("errors") or []
        reason = "; ".join(
            f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}"
            + (f" ({', '.join(e['fields'])})" if e.get("fields") else "")
            for e in errors
        )
        return RowResult(False, status, self.http.redact(f"salesforce: {reason or 'failed'}")[:300], record_id)


def raise_for_error(http: HttpClient, response: requests.Response) -> None:
    """Salesforce's error codes read before the generic policy; shared by the sync and the Task channel."""
    body = response_json(response)
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    code = first.get("errorCode")
    message = f"{code}: {first.get('message', '')}" if code else None
    if code == "REQUEST_LIMIT_EXCEEDED":
        usage = API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        reason = http.reason(response, message)
        if usage is None or int(usage.group(1)) >= int(usage.group(2)):
            raise QuotaExhausted(reason, response.status_code)
        # Allocation left: this is the concurrent long-running request limit, which clears quickly.
        raise RetryableError(reason, response.status_code, retry_after_header(response) or CONCURRENT_RETRY_SECONDS)
    if code in ("INVALID_SESSION_ID", "NOT_FOUND", "INVALID_TYPE", "INVALID_FIELD"):
        raise DestinationConfigError(http.reason(response, message), response.status_code)
    http.raise_for_status(response, message=message)
