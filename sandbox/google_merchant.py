"""Google Merchant Center through the Merchant API: product inputs inserted into and deleted from a data
source (``GoogleMerchant``, served under ``/google_merchant``).

- ``POST /products/v1/accounts/{account}/productInputs:insert?dataSource=accounts/{account}/dataSources/{id}``
  with one ``ProductInput``: ``offerId`` (at most 50 characters), ``contentLanguage`` (ISO 639-1),
  ``feedLabel``, ``productAttributes``. It replaces the input with the same offerId, language and feed
  label in that data source. Checked, each problem a ``google.rpc.BadRequest`` field violation of one 400
  ``INVALID_ARGUMENT``: title, link and imageLink present (links http(s)); ``price`` present, a ``Price``
  with ``amountMicros`` an int64 (as a string or a number) above 0 and a three-letter ``currencyCode``;
  ``salePrice`` likewise and in the same currency; ``availability`` one of the API's enum names
  (IN_STOCK, OUT_OF_STOCK, PREORDER, LIMITED_AVAILABILITY, BACKORDER); ``condition`` NEW, USED or
  REFURBISHED; ``salePriceEffectiveDate`` an ``Interval`` whose startTime is before its endTime.
  Answers the ``ProductInput`` with its ``name`` (``accounts/{a}/productInputs/{lang}~{label}~{offerId}``)
  and ``product`` (the processed product's name).
- ``DELETE /products/v1/accounts/{account}/productInputs/{lang}~{label}~{offerId}?dataSource=``: ``{}``, or
  404 ``NOT_FOUND`` when the data source holds no such input.
- The data source must be named in full and belong to the account (400 otherwise). Bearer auth (401
  UNAUTHENTICATED); past the per-minute quota, 429 ``RESOURCE_EXHAUSTED`` (quota/request_rate_too_high).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.base import Refusal
from sandbox.faults import REJECTION_MESSAGE
from sandbox.google import Google, status_error
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody

DOMAIN = "merchantapi.googleapis.com"
AVAILABILITY = {"IN_STOCK", "OUT_OF_STOCK", "PREORDER", "LIMITED_AVAILABILITY", "BACKORDER"}
CONDITIONS = {"NEW", "USED", "REFURBISHED"}
MAX_OFFER_ID = 50
_LINK = re.compile(r"https?://\S+")
_LANGUAGE = re.compile(r"[a-z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATA_SOURCE = re.compile(r"accounts/([^/]+)/dataSources/(\d+)")


def _micros(price: Any, field: str, violations: list[dict[str, str]]) -> tuple[int, str] | None:
    """A Price's (amountMicros, currencyCode), or None after recording what is wrong with it."""
    if not isinstance(price, dict):
        violations.append({"field": field, "description": "must be a Price with amountMicros and currencyCode"})
        return None
    raw = price.get("amountMicros")
    try:
        micros = int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
    except ValueError:
        micros = None
    currency = price.get("currencyCode")
    if micros is None or micros <= 0:
        violations.append({"field": f"{field}.amount_micros", "description": f"invalid amount {raw!r}"})
        return None
    if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        violations.append({"field": f"{field}.currency_code", "description": f"invalid currency {currency!r}"})
        return None
    return micros, currency


def product_violations(body: Any) -> list[dict[str, str]]:
    """Every field violation of one ProductInput (empty when Google would take it)."""
    if not isinstance(body, dict):
        return [{"field": "product_input", "description": "must be an object"}]
    violations: list[dict[str, str]] = []
    offer = body.get("offerId")
    if not isinstance(offer, str) or not offer or len(offer) > MAX_OFFER_ID:
        violations.append({"field": "offer_id", "description": f"required, 1 to {MAX_OFFER_ID} characters"})
    if not (isinstance(body.get("contentLanguage"), str) and _LANGUAGE.fullmatch(body["contentLanguage"])):
        violations.append({"field": "content_language", "description": "required, an ISO 639-1 code"})
    if not (isinstance(body.get("feedLabel"), str) and body["feedLabel"]):
        violations.append({"field": "feed_label", "description": "required"})
    attributes = body.get("productAttributes")
    if not isinstance(attributes, dict):
        return [*violations, {"field": "product_attributes", "description": "required"}]
    for name, field in (("title", "title"), ("link", "link"), ("imageLink", "image_link")):
        value = attributes.get(name)
        if not (isinstance(value, str) and value.strip()):
            violations.append({"field": f"product_attributes.{field}", "description": "required"})
        elif name != "title" and not _LINK.fullmatch(value):
            violations.append({"field": f"product_attributes.{field}", "description": f"invalid URL {value!r}"})
    price = _micros(attributes.get("price"), "product_attributes.price", violations) \
        if "price" in attributes else violations.append({"field": "product_attributes.price", "description": "required"})
    if "salePrice" in attributes:
        sale = _micros(attributes["salePrice"], "product_attributes.sale_price", violations)
        if sale and price and sale[1] != price[1]:
            violations.append({"field": "product_attributes.sale_price", "description": "currency differs from price"})
    if attributes.get("availability") not in AVAILABILITY:
        violations.append({"field": "product_attributes.availability",
                           "description": f"invalid value {attributes.get('availability')!r}"})
    if "condition" in attributes and attributes["condition"] not in CONDITIONS:
        violations.append({"field": "product_attributes.condition",
                           "description": f"invalid value {attributes['condition']!r}"})
    dates = attributes.get("salePriceEffectiveDate")
    if dates is not None and not (isinstance(dates, dict) and isinstance(dates.get("startTime"), str)
                                  and isinstance(dates.get("endTime"), str) and dates["startTime"] < dates["endTime"]):
        violations.append({"field": "product_attributes.sale_price_effective_date",
                           "description": "an Interval whose startTime is before its endTime"})
    return violations


class GoogleMerchant(Google):
    """The Merchant API's productInputs, with Google's errors, auth and quota."""

    name = "google_merchant"

    def reset_state(self) -> None:
        self.data_sources: dict[str, dict[str, Any]] = {}  # accounts/{a}/dataSources/{id} -> {name: input}

    def state(self) -> dict[str, Any]:
        return {"data_sources": self.data_sources}

    def load_state(self, data: dict[str, Any]) -> None:
        self.data_sources = dict(data.get("data_sources", {}))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/products/v1/accounts/{account}/productInputs:insert", self.endpoint(self.insert),
                  methods=["POST"]),
            Route("/products/v1/accounts/{account}/productInputs/{product}", self.endpoint(self.delete),
                  methods=["DELETE"]),
        ]

    def rate_limited(self, check: WindowCheck) -> Response:
        return status_error(
            429, "RESOURCE_EXHAUSTED", "quota/request_rate_too_high: Quota exceeded for the products service.",
            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": DOMAIN,
              "metadata": {"quota_limit_value": str(self.window.limit)}}],
        )

    def _data_source(self, request: Request) -> dict[str, Any]:
        name = request.query_params.get("dataSource", "")
        found = _DATA_SOURCE.fullmatch(name)
        if not found or found.group(1) != request.path_params["account"]:
            raise Refusal("bad data source", details=[{
                "field": "data_source", "description": f"expected accounts/{request.path_params['account']}"
                                                       f"/dataSources/{{id}}, got {name!r}"}])
        return self.data_sources.setdefault(name, {})

    async def insert(self, request: Request) -> Response:
        """Insert (or replace) one product input."""
        inputs = self._data_source(request)
        body = await self.json_body(request)
        violations = product_violations(body)
        if not violations and self.faults.rejects_rows and self.faults.rejects(body["offerId"]):
            violations = [{"field": "offer_id", "description": REJECTION_MESSAGE}]
        if violations:
            raise Refusal("invalid product input", details=violations)
        account = request.path_params["account"]
        key = f"{body['contentLanguage']}~{body['feedLabel']}~{body['offerId']}"
        answer = {**body, "name": f"accounts/{account}/productInputs/{key}",
                  "product": f"accounts/{account}/products/{key}"}
        inputs[key] = answer
        return JSONBody(answer)

    async def delete(self, request: Request) -> Response:
        """Delete one product input by name; 404 when the data source holds none."""
        inputs = self._data_source(request)
        key = unquote(request.path_params["product"])
        if inputs.pop(key, None) is None:
            return status_error(404, "NOT_FOUND", f"Product input {key} not found in the data source.")
        return JSONBody({})
