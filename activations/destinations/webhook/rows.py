"""Webhook: Attiva's own contract for any HTTP endpoint.

`POST <url><path>` with `{"operation": "upsert"|"remove", "rows": [{"key": ..., <identifiers>, <fields>}]}`
and the header `X-Attiva-Signature: sha256=<hex HMAC-SHA256(secret, body)>` over
the exact bytes sent. The receiver answers 200 with one result per row,
`{"results": [{"index": i, "ok": true|false, "error": "..."}]}`, `index` being
the row's position in `rows` (a result may name its row by `key` instead, or
by its own position when it carries neither). The sender asks `Prefer: return=minimal`
(RFC 7240): a receiver that took every row may answer `{"accepted": n}` instead, `n` being
the number of rows sent; any other count is not an answer and the batch is sent again.
"""

from __future__ import annotations

import functools
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
            keyed_by_identifiers=False,  # rows travel with their key: the receiver knows them by it
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
        key = pl.col(KEY_COLUMN).cast(pl.String).alias("key")
        rows = json_rows(batch.select(key, *columns))
        body = b'{"operation":' + dumps(operation) + b',"rows":' + rows + b"}"
        response = self.http.request(
            "POST",
            self.path,
            data=body,
            headers={"Content-Type": "application/json", "Prefer": "return=minimal",
                     SIGNATURE_HEADER: signature(self.config.token, body)},
        )
        self.http.raise_for_status(response)
        answer = response_json(response)
        if isinstance(answer, dict) and "results" not in answer and "accepted" in answer:
            accepted = answer["accepted"]
            if type(accepted) is not int or accepted != batch.height:
                raise RetryableError(self.http.reason(
                    response, f"the answer accepts {accepted!r} rows of {batch.height} sent"), response.status_code)
            return [RowResult(True, response.status_code)] * batch.height
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise RetryableError(self.http.reason(response, "no results list in the answer"), response.status_code)
        keys = batch.select(key).to_series().to_list()  # as sent: results may name their row by it
        return self._verdicts(results, keys, response.status_code)

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """A `remove` of the rows by key: the receiver deletes what it holds of them."""
        return self.send("remove", rows)

    def _verdicts(self, results: list[Any], keys: list[str], status: int) -> list[RowResult]:
        """Each row's verdict: matched by `index`, else by `key`, else by position.

        One shared verdict for plain successes: a 10k-row answer makes 10k of them.
        """
        accepted = RowResult(True, status)
        if len(results) == len(keys) and results == _all_accepted(len(keys)):
            return [accepted] * len(keys)  # the contract's answer when every row is taken, compared in C
        verdicts: list[RowResult | None] = [None] * len(keys)
        position_of: dict[str, int] | None = None
        same_length = len(results) == len(keys)
        for position, item in enumerate(results):
            if not isinstance(item, dict):
                continue
            index = item.get("index")
            if type(index) is not int or not 0 <= index < len(keys):
                key = item.get("key")
                if key is not None:
                    position_of = position_of or {k: i for i, k in enumerate(keys)}
                    index = position_of.get(str(key))
                elif same_length:
                    index = position
                else:
                    index = None
                if index is None:
                    continue
            if item.get("ok", item.get("status") in ("ok", "accepted")):
                record_id = item.get("id")
                verdicts[index] = accepted if record_id is None else RowResult(True, status, None, str(record_id))
            else:
                error = item.get("error") or item.get("reason") or "rejected"
                verdicts[index] = RowResult(False, status, self.http.redact(f"webhook: {error}")[:300],
                                            _text(item.get("id")))
        missing = RowResult(False, status, "webhook: no result for this key")
        return [missing if verdict is None else verdict for verdict in verdicts]


@functools.lru_cache(maxsize=4)  # the batch size and the last, shorter batch
def _all_accepted(count: int) -> list[dict[str, Any]]:
    """`[{"index": 0, "ok": true, "error": null}, ...]` for `count` rows, as parsed; never modified."""
    return [{"index": i, "ok": True, "error": None} for i in range(count)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
