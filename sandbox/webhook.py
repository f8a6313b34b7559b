"""Attiva's generic webhook receiver: signed JSON batches of rows.

- ``POST /webhook/{any/path}`` with ``{"rows": [...]}`` (at most ``webhook_max_rows``,
  10,000 by default; more is 413).
- ``X-Attiva-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``, else 401
  ``{"error": ...}``; the secret is ``ATTIVA_WEBHOOK_TOKEN`` (default ``sandbox-webhook-token``).
  Only a sandbox started with ``webhook_require_signature=False`` takes a post without the
  header (a wrong signature is still 401).
- 200 ``{"received": n, "results": [{"index": i, "ok": bool, "error": str|null}]}``; a row
  that is not an object with a non-empty ``key`` is refused (``ok: false``). A sender asking
  ``Prefer: return=minimal`` (RFC 7240) gets ``{"received": n, "accepted": n}`` when every row
  was taken (10,000 "ok"s say no more than that), and the per-row results otherwise.
- Kept per path: the latest row per key and how many rows arrived. Unthrottled by
  default; with a configured window the answer past it is 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import signature_ok
from sandbox.base import Refusal, VendorApi
from sandbox.faults import REJECTION_MESSAGE
from sandbox.limits import WindowCheck, ceil_seconds
from sandbox.wire import JSONBody

SIGNATURE_HEADER = "X-Attiva-Signature"
_OK_RESULTS: list[dict[str, Any]] = []  # {"index": i, "ok": True, "error": None}, made once, only ever read


def _ok_results(count: int) -> list[dict[str, Any]]:
    """The answers of rows 0 .. count - 1 when accepted (shared: making 10,000 dicts a batch cost more
    than storing the rows)."""
    while len(_OK_RESULTS) < count:
        _OK_RESULTS.append({"index": len(_OK_RESULTS), "ok": True, "error": None})
    return _OK_RESULTS[:count]


def _wants_minimal(request: Request) -> bool:
    """`Prefer: return=minimal` among the request's preferences (RFC 7240)."""
    prefer = request.headers.get("prefer", "")
    return any(part.strip().lower() == "return=minimal" for part in prefer.split(","))


class Webhook(VendorApi):
    name = "webhook"

    def reset_state(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}  # path -> {"received": n, "rows": {key: row}}

    def state(self) -> dict[str, Any]:
        return {"endpoints": self.endpoints}

    def load_state(self, data: dict[str, Any]) -> None:
        self.endpoints = {
            path: {"received": int(e.get("received", 0)), "rows": dict(e.get("rows", {}))}
            for path, e in data.get("endpoints", {}).items()
        }

    def routes(self) -> list[BaseRoute]:
        return [Route("/{path:path}", self.endpoint(self.receive), methods=["POST"])]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:  # pragma: no cover - signature-based
        return request.headers.get(SIGNATURE_HEADER)

    async def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get(SIGNATURE_HEADER)
        if header is None:
            return None if not self.config.webhook_require_signature else self.auth_error(missing=True)
        if not signature_ok(self.secret, await request.body(), header):
            return self.auth_error(missing=False)
        return None

    def auth_error(self, missing: bool) -> Response:
        message = f"missing {SIGNATURE_HEADER} header" if missing else f"{SIGNATURE_HEADER} does not match the body"
        return JSONBody({"error": message}, status_code=401)

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        return {} if check.allowed else {"Retry-After": str(ceil_seconds(check.reset_after))}

    def rate_limited(self, check: WindowCheck) -> Response:
        return JSONBody({"error": "rate limited"}, status_code=429)

    def server_error(self) -> Response:
        return JSONBody({"error": "temporary failure, retry"}, status_code=503)

    def refuse(self, refusal: Refusal) -> Response:
        return JSONBody({"error": refusal.message}, status_code=refusal.status)

    # ---- endpoint ------------------------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        """Accept a batch of keyed rows; refuse rows without a key."""
        body = await self.json_body(request)
        rows = body.get("rows") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise Refusal('body must be {"rows": [...]}')
        limit = self.config.webhook_max_rows
        if len(rows) > limit:
            raise Refusal(f"batch of {len(rows)} rows exceeds the limit of {limit}", status=413)
        path = "/" + request.path_params["path"]
        endpoint = self.endpoints.get(path)
        if endpoint is None:
            endpoint = self.endpoints[path] = {"received": 0, "rows": {}}
        stored = endpoint["rows"]
        removing = body.get("operation") == "remove"  # Attiva's mirror syncs; other senders only add
        rejects = self.faults.rejects if self.faults.rejects_rows else None
        endpoint["received"] += len(rows)
        keys = [row.get("key") if type(row) is dict else None for row in rows]
        if rejects is None and all(type(key) is str and key for key in keys):
            # Every row checked and keyed by a non-empty string (what senders send): store them in one
            # pass and answer with the shared "ok" results, 4x cheaper than the row-by-row loop below.
            if removing:
                for key in keys:
                    stored.pop(key, None)  # removing what is not there is still done
            else:
                stored.update(zip(keys, rows, strict=True))
            if _wants_minimal(request):
                return JSONBody({"received": len(rows), "accepted": len(rows)})
            return JSONBody({"received": len(rows), "results": _ok_results(len(rows))})
        accepted = _ok_results(len(rows))
        results: list[dict[str, Any]] = []
        append = results.append
        for index, row in enumerate(rows):
            key = row.get("key") if isinstance(row, dict) else None
            if key is None or key == "" or isinstance(key, dict | list):
                append({"index": index, "ok": False, "error": "row has no key"})
                continue
            key = str(key)
            if rejects is not None and rejects(key):
                append({"index": index, "ok": False, "error": REJECTION_MESSAGE})
                continue
            if removing:
                stored.pop(key, None)  # removing what is not there is still done
            else:
                stored[key] = row
            append(accepted[index])
        return JSONBody({"received": len(rows), "results": results})
