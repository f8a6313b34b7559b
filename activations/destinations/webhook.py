"""Webhook: Attiva's own contract for any HTTP endpoint.

`POST <url><path>` with `{"operation": "upsert"|"remove", "rows": [{"key": ..., <identifiers>, <fields>}]}`
and the header `X-Attiva-Signature: sha256=<hex HMAC-SHA256(secret, body)>` over
the exact bytes sent. The receiver answers 200 with one result per row,
`{"results": [{"index": i, "ok": true|false, "error": "..."}]}`, `index` being
the row's position in `rows` (a result may name its row by `key` instead, or
by its own position when it carries neither).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import polars as pl

from activations.destinations.base import (
    KEY_COLUMN,
    BatchPart,
    Capabilities,
    Operation,
    RetryableError,
    RowResult,
    Secret,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpDestination,
    dumps,
    json_rows,
    require_columns,
    response_json,
)

SIGNATURE_HEADER = "X-Attiva-Signature"


def signature(secret: Secret, body: bytes) -> str:
    """The value of `X-Attiva-Signature` for `body`."""
    return "sha256=" + hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()


class WebhookDestination(HttpDestination):
    """Signed row batches POSTed to one endpoint."""

    type = "webhook"
    options = {
        "path": Option(str, default="/", help="path appended to the base URL"),
        "max_rows": Option(int, default=10_000, help="rows per request the receiver accepts"),
        "idempotent": Option(bool, default=True, help="the receiver dedupes on key, so a retried batch is safe"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        path = str(config.get("path", "/"))
        self.path = path if path.startswith("/") else f"/{path}"

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=int(config.get("max_rows", 10_000)),
            requests_per_window=None,
            window_seconds=None,
            max_concurrency=4,
            modes=frozenset({"upsert", "update", "insert", "mirror", "full_resync"}),
            identifiers=("email", "phone", "external_id"),
            hashing=None,
            needs_destination_id_for_remove=False,
            idempotent_writes=bool(config.get("idempotent", True)),
        )

    def auth_headers(self, token: Secret) -> dict[str, str]:
        return {}  # the secret signs the body; it is never sent

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """POST the signed batch; one result per row from the receiver's answer."""
        if batch.height == 0:
            return []
        require_columns(batch, [KEY_COLUMN], self.type)
        columns = [c for c in batch.columns if not c.startswith("_") and c != "key"]
        keys = [str(k) for k in batch[KEY_COLUMN].to_list()]
        rows = json_rows(batch.select(pl.col(KEY_COLUMN).cast(pl.String).alias("key"), *columns))
        body = b'{"operation":' + dumps(operation) + b',"rows":' + rows + b"}"
        response = self.http.request(
            "POST",
            self.path,
            data=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.config.token, body)},
        )
        self.http.raise_for_status(response)
        answer = response_json(response)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise RetryableError(self.http.reason(response, "no results list in the answer"), response.status_code)
        return [self._row_result(item, response.status_code) for item in _match(results, keys)]

    def _row_result(self, item: dict[str, Any] | None, status: int) -> RowResult:
        if item is None:
            return RowResult(False, status, "webhook: no result for this key")
        if item.get("ok", item.get("status") in ("ok", "accepted")):
            return RowResult(True, status, None, _text(item.get("id")))
        error = item.get("error") or item.get("reason") or "rejected"
        return RowResult(False, status, self.http.redact(f"webhook: {error}")[:300], _text(item.get("id")))


def _match(results: list[Any], keys: list[str]) -> list[dict[str, Any] | None]:
    """Each row's result: by `index`, else by `key`, else by position."""
    matched: list[dict[str, Any] | None] = [None] * len(keys)
    position_of = {key: i for i, key in enumerate(keys)}
    for position, item in enumerate(results):
        if not isinstance(item, dict):
            continue
        index = item.get("index")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(keys):
            matched[index] = item
        elif item.get("key") is not None and str(item["key"]) in position_of:
            matched[position_of[str(item["key"])]] = item
        elif len(results) == len(keys):
            matched[position] = item
    return matched


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
