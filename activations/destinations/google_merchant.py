"""Google Merchant Center through the Merchant API (the Content API for Shopping's successor): products
kept in one primary data source, for Shopping and dynamic remarketing ads.

`POST /products/v1/accounts/{account}/productInputs:insert?dataSource=accounts/{account}/dataSources/{id}`
takes one product input (`offerId` = the sync's key, `contentLanguage`, `feedLabel`, `productAttributes`)
and replaces the one with the same offerId, language and feed label: an upsert, safe to send again.
`DELETE /products/v1/accounts/{account}/productInputs/{contentLanguage}~{feedLabel}~{offerId}?dataSource=`
removes it; a 404 means it is already gone, which is what a removal wants.

One product a request (the API inserts one; its HTTP batch wrapper is counted as as many calls), so a
send is one row. A 400 `INVALID_ARGUMENT` refuses that product: its row is rejected with Google's
field violations. 429 `RESOURCE_EXHAUSTED` (quota/request_rate_too_high: the per-minute quota Google
sizes to the account's use) is retried after back-off.

Rows carry the catalog's neutral fields (docs/destinations/google-merchant.md): `price` and
`sale_price` with `currency` become `{amountMicros, currencyCode}`, `availability` "in stock" becomes
`IN_STOCK`, `sale_starts_at` / `sale_ends_at` become `salePriceEffectiveDate`; `image_link` is
`imageLink`; any other mapped field is sent under its own name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import polars as pl
import requests

from activations.destinations.base import (
    KEY_COLUMN,
    BatchPart,
    Capabilities,
    Operation,
    RowResult,
)
from activations.destinations.catalog_fields import catalog_capabilities, iso_instant
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpDestination,
    Verdict,
    field_rows,
    http_verdict,
    json_value,
    response_json,
)

# Neutral catalog fields the client spells as the Merchant API does; not sent as they are.
COMPOSED = ("price", "sale_price", "currency", "sale_starts_at", "sale_ends_at", "availability", "condition")
RENAMED = {"image_link": "imageLink"}


class GoogleMerchantDestination(HttpDestination):
    """Products of one Merchant Center data source, kept a mirror of the warehouse's catalog."""

    type = "google_merchant"
    options = {
        "account_id": Option(str, required=True, help="the Merchant Center account id"),
        "data_source_id": Option(str, required=True, help="the primary products data source (API input)"),
        "content_language": Option(str, default="it", help="ISO 639-1 language of the titles and descriptions"),
        "feed_label": Option(str, default="IT", help="the feed label (usually the target country)"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        account = config.require("account_id")
        self.parent = f"/products/v1/accounts/{account}/productInputs"
        self.data_source = f"accounts/{account}/dataSources/{config.require('data_source_id')}"
        self.language = str(config.get("content_language", "it"))
        self.feed_label = str(config.get("feed_label", "IT"))

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        # productInputs.insert takes one product; Google sizes the per-minute quota to the account's use.
        return catalog_capabilities(cls.type, batch_size=1, max_concurrency=4)

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Insert (upsert) or delete (remove) each row's product input; one result per row."""
        fields = self.field_columns(batch)
        results = []
        for key, row in zip(batch[KEY_COLUMN].to_list(), field_rows(batch, fields), strict=True):
            offer = str(key)
            if operation == "remove":
                name = quote(f"{self.language}~{self.feed_label}~{offer}", safe="~")
                response = self.http.request("DELETE", f"{self.parent}/{name}", params={"dataSource": self.data_source})
                if response.status_code == 404:  # not held: what a removal wants
                    results.append(RowResult(True, 404))
                    continue
            else:
                body = {"offerId": offer, "contentLanguage": self.language, "feedLabel": self.feed_label,
                        "productAttributes": product_attributes(row)}
                response = self.http.request("POST", f"{self.parent}:insert", json_body=body,
                                             params={"dataSource": self.data_source})
            if response.status_code >= 400:
                message = _google_message(response)
                if http_verdict(response.status_code) is Verdict.REFUSE:
                    # A refusal is about this product alone (one a request): its row is rejected with Google's reason.
                    results.append(RowResult(False, response.status_code, self.http.reason(response, message)))
                    continue
                self.http.raise_for_status(response, message=message)  # retry (429, 5xx) or stop (401, 403, 404)
            answer = response_json(response)
            results.append(RowResult(True, response.status_code,
                                     destination_id=answer.get("name") if isinstance(answer, dict) else None))
        return results


def money(amount: Any, currency: Any) -> dict[str, str]:
    """An amount as the Merchant API's Price: micros as an int64 string, and the ISO 4217 code."""
    return {"amountMicros": str(int(Decimal(str(amount)) * 1_000_000)), "currencyCode": str(currency)}


def product_attributes(row: dict[str, Any]) -> dict[str, Any]:
    """One catalog row as `productAttributes` (nulls left out: insert replaces the whole input)."""
    attributes: dict[str, Any] = {}
    for name, value in row.items():
        if name not in COMPOSED and value is not None:
            attributes[RENAMED.get(name, name)] = json_value(value)
    for name, key in (("price", "price"), ("sale_price", "salePrice")):
        if row.get(name) is not None:
            attributes[key] = money(row[name], row.get("currency"))
    for name in ("availability", "condition"):
        if row.get(name) is not None:
            attributes[name] = str(row[name]).strip().upper().replace(" ", "_")
    if row.get("sale_starts_at") is not None and row.get("sale_ends_at") is not None:
        attributes["salePriceEffectiveDate"] = {"startTime": iso_instant(row["sale_starts_at"]),
                                                "endTime": iso_instant(row["sale_ends_at"])}
    return attributes


def _google_message(response: requests.Response) -> str:
    """Google's error message with its field violations, when it names them."""
    body = response_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get("message") or error.get("status") or "")]
    for detail in error.get("details") or []:
        for violation in (detail.get("fieldViolations") or []) if isinstance(detail, dict) else []:
            parts.append(f"{violation.get('field', '')}: {violation.get('description', '')}".strip(": "))
    return "; ".join(part for part in parts if part)
