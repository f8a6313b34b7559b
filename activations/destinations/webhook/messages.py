"""One triggered message per signed POST, in Attiva's webhook contract (the audience rows are rows.py)."""

from __future__ import annotations

from typing import ClassVar

from activations.destinations.base import DestinationError, Secret
from activations.destinations.transport import CONNECT_RETRY_DELAYS, HttpClient, dumps, response_json
from activations.destinations.webhook.rows import SIGNATURE_HEADER, signature
from activations.messaging.delivery import Delivery, OutgoingMessage, accepted, failure, http_delivery, permanent


class WebhookMessageChannel:
    """One message per signed POST, in Attiva's webhook contract: one row keyed by the message id."""

    dagster_kind: ClassVar[str] = "webhook"  # the kind Dagster shows on its campaigns' assets

    def __init__(self, url: str, secret: Secret, *, timeout: float = 30.0, pool_size: int = 4,
                 from_email: str = "", from_name: str = "") -> None:
        self.url = url
        self.secret = secret
        self.from_email, self.from_name = from_email, from_name
        self.http = HttpClient(url, secret, platform="webhook", max_concurrency=pool_size, read_timeout=timeout,
                               connect_retry_delays=CONNECT_RETRY_DELAYS)

    def __repr__(self) -> str:
        return f"WebhookMessageChannel(url={self.url!r})"

    def body(self, message: OutgoingMessage) -> bytes:
        """The exact bytes posted (and signed)."""
        row = {
            "key": message.message_id,
            "message_id": message.message_id,
            "campaign": message.campaign,
            "to_email": message.to_email,
            "to_name": message.to_name,
            "from_email": message.from_email,
            "from_name": message.from_name,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "headers": dict(message.headers),
        }
        return dumps({"operation": "message", "rows": [row]})

    def send(self, message: OutgoingMessage) -> Delivery:
        """200 with the row's result `ok` is accepted; a row refused by the receiver is permanent."""
        body = self.body(message)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, body)}
        try:
            response = self.http.request("POST", "", data=body, headers=headers)
        except DestinationError as exc:
            return failure(exc)
        if response.status_code >= 300:
            return http_delivery(self.http, response, None)
        answer = response_json(response)
        results = answer.get("results") if isinstance(answer, dict) else None
        first = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else None
        if first is not None and first.get("ok") is False:
            error = self.http.redact(str(first.get("error") or "refused"))
            return permanent(f"webhook: {error}", response.status_code)
        provider_id = str(first["id"]) if first is not None and first.get("id") is not None else None
        return accepted(response.status_code, provider_id)

    def close(self) -> None:
        self.http.close()


