"""Meta Commerce catalog: products kept in one catalog with the Catalog Batch API, for dynamic ads.

`POST /{version}/{catalog_id}/items_batch` with `item_type=PRODUCT_ITEM` and up to 5,000 `requests`
(`{"method": "UPDATE"|"DELETE", "data": {"id": <the sync's key>, ...}}`) answers with `handles`; Meta
processes the batch afterwards, and `GET /{version}/{catalog_id}/check_batch_request_status?handle=`
says when it `finished` and which items it refused (`errors`: `line`, `id`, `message`). A row counts as
synced only once its batch finished without an error naming it; a batch still processing after
`poll_timeout` seconds is sent again by the engine (every request here is idempotent).

An upsert is always an UPDATE: with `allow_upsert` (Meta's default) it creates an item Meta does not hold,
so a batch sent again after an ambiguous failure changes nothing. A removal is a DELETE by id.

Rows carry the catalog's neutral fields (docs/destinations/meta-catalog.md): `price` and `sale_price` as
numbers with `currency` become "12.34 EUR", `sale_starts_at` / `sale_ends_at` become
`sale_price_effective_date` ("start/end", ISO 8601); every other mapped field is sent under its own name.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import polars as pl

from activations.destinations.base import (
    KEY_COLUMN,
    BatchPart,
    Capabilities,
    Operation,
    RetryableError,
    RowResult,
)
from activations.destinations.catalog_fields import catalog_capabilities, iso_instant
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.meta.graph import API_VERSION_OPTION, api_version, raise_graph_error
from activations.destinations.transport import HttpDestination, field_rows, json_value, response_json

MAX_REQUESTS = 5_000  # item requests per items_batch call
# Neutral fields the client composes into Meta's; not sent as they are.
COMPOSED = ("price", "sale_price", "currency", "sale_starts_at", "sale_ends_at")
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 5.0


class MetaCatalogDestination(HttpDestination):
    """Products of one Meta Commerce catalog, kept a mirror of the warehouse's catalog."""

    type = "meta_catalog"
    options = {
        "catalog_id": Option(str, required=True, help="the product catalog id the items are kept in"),
        "api_version": API_VERSION_OPTION,
        "poll_timeout": Option(float, default=120.0, help="seconds to wait for Meta to finish a batch"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        catalog = f"/{api_version(config)}/{config.require('catalog_id')}"
        self.batch_path = f"{catalog}/items_batch"
        self.status_path = f"{catalog}/check_batch_request_status"
        self.poll_timeout = float(config.get("poll_timeout", 120.0))

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        # Meta's Catalog Batch limit is a formula on the catalog's size; it throttles with Graph codes.
        return catalog_capabilities(cls.type, batch_size=MAX_REQUESTS, max_concurrency=2)

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Send the rows as one items_batch and wait for Meta to process it; ok for the items it took."""
        if batch.height == 0:
            return []
        keys = [str(key) for key in batch[KEY_COLUMN].to_list()]
        if operation == "remove":
            requests_ = [{"method": "DELETE", "data": {"id": key}} for key in keys]
        else:
            fields = self.field_columns(batch)
            requests_ = [{"method": "UPDATE", "data": item_data(key, row)}
                         for key, row in zip(keys, field_rows(batch, fields), strict=True)]
        body = {"item_type": "PRODUCT_ITEM", "allow_upsert": True, "requests": requests_}
        response = self.http.request("POST", self.batch_path, json_body=body)
        if response.status_code >= 400:
            raise_graph_error(self.http, response)
        answer = response_json(response)
        handles = answer.get("handles") if isinstance(answer, dict) else None
        if not isinstance(handles, list) or not handles:
            raise RetryableError(self.http.reason(response, "no batch handle in the answer"), response.status_code)
        refused: dict[str, str] = {}
        for handle in handles:
            refused.update(self._wait_for(str(handle), keys))
        return [RowResult(False, 200, f"meta_catalog: {refused[key]}") if key in refused else RowResult(True, 200)
                for key in keys]

    def _wait_for(self, handle: str, keys: list[str]) -> dict[str, str]:
        """Poll the batch until Meta finished it; the items it refused, by key, with its message."""
        deadline = time.monotonic() + self.poll_timeout
        delay = FIRST_POLL_SECONDS
        while True:
            response = self.http.request("GET", self.status_path, params={"handle": handle})
            if response.status_code >= 400:
                raise_graph_error(self.http, response)
            answer = response_json(response)
            data = answer.get("data") if isinstance(answer, dict) else None
            status = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
            if status.get("status") == "finished":
                return finished_errors(status, keys)
            if status.get("status") in ("error", "failed"):
                raise RetryableError(f"meta_catalog: batch {handle} failed at Meta: {status.get('errors')!r}"[:500])
            if time.monotonic() + delay > deadline:
                # Not confirmed: nothing is marked synced; the engine sends the (idempotent) batch again.
                raise RetryableError(f"meta_catalog: batch {handle} still {status.get('status')!r} after "
                                     f"{self.poll_timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)


def item_data(key: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """One catalog row as the `data` of a PRODUCT_ITEM request (other nulls left out: Meta keeps its value)."""
    data: dict[str, Any] = {"id": key}
    currency = row.get("currency")
    for name in ("price", "sale_price"):
        if row.get(name) is not None:
            data[name] = f"{Decimal(str(row[name])).quantize(Decimal('0.01'))} {currency}"
    # A promotion that ended must leave the item: an empty value clears a field, an absent one keeps it.
    data.setdefault("sale_price", "")
    starts, ends = row.get("sale_starts_at"), row.get("sale_ends_at")
    data["sale_price_effective_date"] = (f"{iso_instant(starts)}/{iso_instant(ends)}"
                                         if starts is not None and ends is not None else "")
    for name, value in row.items():
        if name not in COMPOSED and value is not None:
            data[name] = json_value(value)
    return data


def finished_errors(status: dict[str, Any], keys: list[str]) -> dict[str, str]:
    """The items a finished batch refused, by key. When Meta counts errors it ties to no item of the batch
    (`errors_total_count` above the errors listed, or an error naming no id or line of it), the items it
    named none for are not confirmed either: which of them failed cannot be told; the next run sends them."""
    errors = status.get("errors") if isinstance(status.get("errors"), list) else []
    refused = item_errors(errors, keys)
    total = status.get("errors_total_count")
    unplaced = sum(1 for error in errors if error_key(error, keys) is None)
    if unplaced or (isinstance(total, int) and total > len(errors)):
        counted = max(total if isinstance(total, int) else 0, len(errors))
        unknown = f"Meta counted {counted} errors in the batch without naming every item they concern"
        refused.update({key: unknown for key in keys if key not in refused})
    return refused


def error_key(error: Any, keys: list[str]) -> str | None:
    """The key of the item one of Meta's errors concerns: its `id`, else its `line` in the batch."""
    if not isinstance(error, dict):
        return None
    key, line = error.get("id"), error.get("line")
    if isinstance(key, str) and key in keys:
        return key
    if isinstance(line, int) and not isinstance(line, bool) and 0 <= line < len(keys):
        return keys[line]
    return None


def item_errors(errors: Any, keys: list[str]) -> dict[str, str]:
    """Meta's per-item errors as key -> message (several for one item joined)."""
    found: dict[str, str] = {}
    for error in errors if isinstance(errors, list) else []:
        key = error_key(error, keys)
        if key is not None:
            message = str(error.get("message") or "refused")
            found[key] = f"{found[key]}; {message}" if key in found else message
    return found
