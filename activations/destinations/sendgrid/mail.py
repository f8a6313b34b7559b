"""SendGrid's Mail Send as a message channel (the Marketing Contacts client is contacts.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from activations.destinations.base import DestinationError, Secret
from activations.destinations.transport import CONNECT_RETRY_DELAYS, HttpClient, response_json
from activations.messaging.delivery import (
    RESERVED_HEADERS,
    Delivery,
    OutgoingMessage,
    failure,
    http_delivery,
    permanent,
    transient,
)

MESSAGE_ID_ARG = "attiva_message_id"  # the custom arg carrying our message id (SendGrid)
# How long an accepted message may take to show in SendGrid's Email Activity: one missing
# sooner is not yet taken for "not accepted". 0 for the sandbox, whose feed is immediate.
ACTIVITY_LAG_SECONDS = 600.0


class SendGridMailChannel:
    """SendGrid v3 mail send: one personalization per message, our id in `custom_args`.

    It can also say whether it accepted a message (`accepted`): the Email Activity API searched
    by that custom arg. A read timeout is therefore reported as "outcome unknown" (the next pass
    asks) rather than retried blindly.
    """

    dagster_kind: ClassVar[str] = "sendgrid"  # the kind Dagster shows on its campaigns' assets

    def __init__(self, base_url: str, token: Secret, *, timeout: float = 30.0, pool_size: int = 4,
                 from_email: str = "", from_name: str = "", activity_lag: float = ACTIVITY_LAG_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.from_email, self.from_name = from_email, from_name
        self.activity_lag = activity_lag
        self.http = HttpClient(self.base_url, token, platform="sendgrid", max_concurrency=pool_size,
                               connect_retry_delays=CONNECT_RETRY_DELAYS,
                               read_timeout=timeout, headers={"Authorization": f"Bearer {token.reveal()}"})

    def __repr__(self) -> str:
        return f"SendGridMailChannel(base_url={self.base_url!r})"

    def body(self, message: OutgoingMessage) -> dict[str, Any]:
        """The `POST /v3/mail/send` body for one message."""
        to: dict[str, str] = {"email": message.to_email}
        if message.to_name:
            to["name"] = message.to_name
        sender: dict[str, str] = {"email": message.from_email}
        if message.from_name:
            sender["name"] = message.from_name
        for name in message.headers:
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by the channel")
        body: dict[str, Any] = {
            "personalizations": [{"to": [to]}],
            "from": sender,
            "subject": message.subject,
            # text/plain first: SendGrid requires that order.
            "content": [{"type": "text/plain", "value": message.text}, {"type": "text/html", "value": message.html}],
            "headers": {**message.headers, "X-Attiva-Message-Id": message.message_id},
            "custom_args": {MESSAGE_ID_ARG: message.message_id},
        }
        if message.campaign:
            body["custom_args"]["attiva_campaign"] = message.campaign
            body["categories"] = [message.campaign[:255]]
        return body

    def send(self, message: OutgoingMessage) -> Delivery:
        """202 is accepted (`X-Message-Id` is the provider id)."""
        try:
            body = self.body(message)
        except ValueError as exc:
            return permanent(f"sendgrid: invalid message: {exc}")
        try:
            response = self.http.request("POST", "/v3/mail/send", json_body=body)
        except DestinationError as exc:  # connection failures and timeouts
            if "ReadTimeout" in str(exc.reason):  # the request went out: it may have been accepted
                return transient(f"sendgrid: outcome unknown, no answer in time ({exc.reason})")
            return failure(exc)
        return http_delivery(self.http, response, response.headers.get("X-Message-Id"))

    def accepted(self, message_ids: list[str]) -> dict[str, str | None]:
        """For each message id SendGrid could be asked about: its `msg_id` if it accepted the message,
        None if its Email Activity has no message with that custom arg. Ids it could not be asked
        about now (rate limit: 6 searches a minute; an outage) are left out."""
        found: dict[str, str | None] = {}
        for message_id in message_ids:
            query = f"unique_args['{MESSAGE_ID_ARG}']=\"{_query_string(message_id)}\""
            try:
                response = self.http.request("GET", "/v3/messages", params={"query": query, "limit": 10})
            except DestinationError:
                break
            if response.status_code != 200:
                break  # 429 and the like: ask again next pass
            answer = response_json(response)
            messages = answer.get("messages") if isinstance(answer, dict) else None
            if not isinstance(messages, list):
                break
            # Any status counts: `not_delivered` (bounced, dropped) was still accepted, and sending again
            # would not help.
            ids = [str(m["msg_id"]) for m in messages if isinstance(m, dict) and m.get("msg_id")]
            found[message_id] = ids[0] if ids else None
        return found

    def close(self) -> None:
        self.http.close()


def _query_string(value: str) -> str:
    """A string literal of the activity query language: quotes and backslashes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


