"""Meta Commerce catalog: product items created, updated and deleted with the Catalog Batch API
(``MetaCatalog``, served under ``/meta_catalog``).

- ``POST /v{N}/{catalog_id}/items_batch`` with ``{"item_type": "PRODUCT_ITEM", "allow_upsert": true,
  "requests": [{"method": "CREATE"|"UPDATE"|"DELETE", "data": {"id": ..., ...}}, ...]}`` (JSON, or
  form/query parameters holding JSON strings); at most 5,000 requests. The request is checked as a whole
  (item_type, requests present, within the limit, each a known method with a ``data.id``): a problem
  refuses it with Graph code 100 and nothing is applied. Accepted: ``{"handles": ["..."]}``.
- The items themselves are checked one by one, as Meta does after it answered: a CREATE (or an UPDATE of an
  item not held, with ``allow_upsert``) needs title, description, availability, condition, price, link
  and image_link; ``price`` and ``sale_price`` read "12.34 EUR"; ``availability`` and ``condition`` are
  among Meta's values; ``sale_price_effective_date`` is "start/end" in ISO 8601; links are http(s). An
  UPDATE changes only the fields it carries, and an empty value clears one (a sale that ended); a CREATE of
  an item already held is refused; a DELETE of an item not held is fine (it is gone). Valid items are
  applied; the others are left as they were. ``row_reject_rate`` refuses chosen items (by a hash of the id).
- ``GET /v{N}/{catalog_id}/check_batch_request_status?handle=`` answers ``{"data": [{"handle",
  "status", "errors_total_count", "errors": [{"line", "id", "message"}], "warnings_total_count",
  "warnings"}]}``: ``started`` at the first check of a handle (Meta processes a batch after answering), then
  ``finished``; ``line`` is the request's position in ``requests``. The last MAX_BATCHES handles are kept.
- Auth, Graph errors and throttling as ``Meta``: HTTP 400 with code 17 when the window is spent.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.base import Refusal, trace_id
from sandbox.faults import REJECTION_MESSAGE
from sandbox.meta import Meta, _graph_params, _json_param
from sandbox.wire import JSONBody

MAX_REQUESTS = 5_000
MAX_BATCHES = 10_000
METHODS = ("CREATE", "UPDATE", "DELETE")
AVAILABILITY = {"in stock", "out of stock", "preorder", "available for order", "discontinued"}
CONDITIONS = {"new", "refurbished", "used"}
REQUIRED = ("title", "description", "availability", "condition", "price", "link", "image_link")
_PRICE = re.compile(r"\d+(\.\d{1,2})? [A-Z]{3}")
_LINK = re.compile(r"https?://\S+")


def _is_instant(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def item_problem(item: dict[str, Any]) -> str | None:
    """Why Meta would not take this product item as it stands; None when it is valid."""
    for name in REQUIRED:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"Required field missing: {name}"
    for name in ("price", "sale_price"):
        value = item.get(name)
        if value is not None and not (isinstance(value, str) and _PRICE.fullmatch(value)):
            return f"Invalid {name}: {value!r} (expected an amount and a currency, like 12.34 EUR)"
    if item["availability"] not in AVAILABILITY:
        return f"Invalid availability: {item['availability']!r} (one of {', '.join(sorted(AVAILABILITY))})"
    if item["condition"] not in CONDITIONS:
        return f"Invalid condition: {item['condition']!r} (one of {', '.join(sorted(CONDITIONS))})"
    for name in ("link", "image_link"):
        if not _LINK.fullmatch(item[name]):
            return f"Invalid URL in {name}: {item[name]!r}"
    dates = item.get("sale_price_effective_date")
    if dates is not None:
        parts = dates.split("/") if isinstance(dates, str) else []
        if len(parts) != 2 or not all(_is_instant(part) for part in parts) or parts[0] >= parts[1]:
            return f"Invalid sale_price_effective_date: {dates!r} (expected start/end in ISO 8601)"
    return None


class MetaCatalog(Meta):
    """The Catalog Batch API's items_batch and check_batch_request_status edges of product catalogs."""

    name = "meta_catalog"
    usage_type = "catalog_batch"

    def reset_state(self) -> None:
        self.catalogs: dict[str, dict[str, Any]] = {}  # catalog_id -> {"items": {id: data}}
        self.batches: OrderedDict[str, dict[str, Any]] = OrderedDict()  # handle -> status

    def state(self) -> dict[str, Any]:
        return {"catalogs": self.catalogs, "batches": self.batches}

    def load_state(self, data: dict[str, Any]) -> None:
        self.catalogs = dict(data.get("catalogs", {}))
        self.batches = OrderedDict(data.get("batches", {}))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/{version}/{catalog_id}/items_batch", self.endpoint(self.items_batch), methods=["POST"]),
            Route("/{version}/{catalog_id}/check_batch_request_status", self.endpoint(self.batch_status),
                  methods=["GET"]),
        ]

    async def items_batch(self, request: Request) -> Response:
        """Accept a batch of item requests: checked whole, then applied item by item."""
        params = _graph_params(request)
        if params.get("item_type") != "PRODUCT_ITEM":
            raise Refusal("(#100) Param item_type must be one of {PRODUCT_ITEM, ...}", code="100")
        requests = _json_param(params.get("requests"), "requests")
        if not isinstance(requests, list) or not requests:
            raise Refusal("(#100) The parameter requests is required and must be a non-empty array", code="100")
        if len(requests) > MAX_REQUESTS:
            raise Refusal(f"(#100) Too many requests: {len(requests)}, the maximum is {MAX_REQUESTS}", code="100")
        for line, entry in enumerate(requests):
            if not isinstance(entry, dict) or entry.get("method") not in METHODS:
                raise Refusal(f"(#100) requests[{line}].method must be one of {', '.join(METHODS)}", code="100")
            data = entry.get("data")
            if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
                raise Refusal(f"(#100) requests[{line}].data.id is required", code="100")
        upsert = params.get("allow_upsert", True) not in (False, "false", "0")
        items = self.catalogs.setdefault(request.path_params["catalog_id"], {"items": {}})["items"]
        rejects = self.faults.rejects if self.faults.rejects_rows else None
        errors = []
        for line, entry in enumerate(requests):
            if rejects is not None and entry["method"] != "DELETE" and rejects(entry["data"]["id"]):
                problem: str | None = REJECTION_MESSAGE  # refused whole: nothing of it applied
            else:
                problem = self._apply(items, entry["method"], entry["data"], upsert)
            if problem is not None:
                errors.append({"line": line, "id": entry["data"]["id"], "message": problem})
        handle = f"{secrets.token_hex(8)}-{trace_id()[:8]}"
        self.batches[handle] = {"checks": 0, "errors": errors}
        while len(self.batches) > MAX_BATCHES:
            self.batches.popitem(last=False)
        return JSONBody({"handles": [handle]})

    def _apply(self, items: dict[str, Any], method: str, data: dict[str, Any], upsert: bool) -> str | None:
        """Apply one item request; why it was not applied, or None."""
        item_id = data["id"]
        if method == "DELETE":
            items.pop(item_id, None)
            return None
        held = items.get(item_id)
        if method == "CREATE" and held is not None:
            return f"An item with id {item_id} already exists in this catalog"
        if method == "UPDATE" and held is None and not upsert:
            return f"No item with id {item_id} in this catalog (allow_upsert is false)"
        merged = {**(held or {}), **{k: v for k, v in data.items() if v is not None}}
        merged = {k: v for k, v in merged.items() if v != ""}  # an empty value clears the field
        problem = item_problem(merged)
        if problem is None:
            items[item_id] = merged
        return problem

    async def batch_status(self, request: Request) -> Response:
        """The status of one batch: started at the first check, finished with its errors after."""
        params = _graph_params(request)
        handle = params.get("handle")
        batch = self.batches.get(handle) if isinstance(handle, str) else None
        if batch is None:
            raise Refusal(f"(#100) Invalid handle: {handle!r}", code="100")
        batch["checks"] += 1
        if batch["checks"] == 1:
            return JSONBody({"data": [{"handle": handle, "status": "started"}]})
        errors = batch["errors"]
        return JSONBody({"data": [{"handle": handle, "status": "finished", "errors_total_count": len(errors),
                                   "errors": errors, "warnings_total_count": 0, "warnings": []}]})
