"""What a message channel sends and what it answers: one `OutgoingMessage` in, one `Delivery` out.

A channel never raises for what the receiver says. The verdict on a failure is the syncs'
(transport.Verdict): `permanent` (this message would be refused again), transient (it may go
later), or `stop` (refused credentials, a wrong URL, no connection: no message would go until
someone acts, so the pass stops using the channel and keeps its messages for the next one). A
transient failure after the message body left ("outcome unknown") says so in `reason`: the
message may have been accepted.

The channels themselves: SMTP (messaging/smtp.py) and each platform's, beside its other clients
(destinations/sendgrid/mail.py, destinations/webhook/messages.py, destinations/salesforce/tasks.py,
destinations/twilio/messages.py for SMS, destinations/fcm/messages.py for mobile push).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from activations.destinations.base import (
    BatchRefused,
    DestinationConfigError,
    DestinationError,
    QuotaExhausted,
    RetryableError,
)
from activations.destinations.transport import DestinationUnreachable, HttpClient, retry_after_header

MAX_REASON_CHARS = 300
# Set by the channel itself: a message's own headers may not override them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("From", "To", "Subject", "Date", "Message-ID", "X-Attiva-Message-Id", "X-Attiva-Campaign",
              "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
)


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for one person; `message_id` is the ledger row's, stable across retries."""

    message_id: str
    to_email: str
    to_name: str | None
    from_email: str
    from_name: str
    subject: str
    html: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    campaign: str = ""
    customer_id: str = ""  # the warehouse's id: how a CRM channel finds the person's record
    to_phone: str = ""  # E.164, for an SMS channel (its `recipient` is "phone"); empty otherwise
    to_tokens: tuple[str, ...] = ()  # the device tokens of a push channel (its `recipient` is "push")
    step: int = 1
    priority: int = 0  # the campaign's: an in-app channel shows the highest first
    link: str = ""  # an in-app message's link (its template's in_app_link.txt.j2)
    sent_at: datetime | None = None  # naive UTC, the pass's clock (as_of): an email's Date header


@dataclass(frozen=True)
class PushResult:
    """What a push channel's provider said about one device token of a message."""

    token_sha256: str  # never the token itself
    outcome: str  # sent, retired, failed, unknown or retry
    detail: str | None  # the provider's id when sent, else its reason


@dataclass(frozen=True)
class Delivery:
    """What the receiver said: accepted (`provider_id` is its id), or failed permanently, transiently,
    or so that the channel must stop (`stop`: no message would go until someone fixes it)."""

    ok: bool
    permanent: bool
    status: int | None
    reason: str | None
    provider_id: str | None
    retry_after: float | None = None  # the receiver's own back-off signal, in seconds
    stop: bool = False
    # The recipient has opted out at the channel (an SMS STOP reply: Twilio's 21610): the message is
    # suppressed, not failed, and the number goes on the SMS suppression list.
    opted_out: bool = False
    # Push: device tokens the provider says are gone (FCM's UNREGISTERED): never sent to again.
    retired_tokens: tuple[str, ...] = ()
    push_results: tuple[PushResult, ...] = ()  # push: each device token's own answer


@runtime_checkable
class Channel(Protocol):
    """Sends messages one at a time; `send` is called from several threads at once.

    The clients here also carry `from_email` / `from_name`: the sender configured in channels.yml.
    """

    def send(self, message: OutgoingMessage) -> Delivery:
        """Deliver one message; never raises for the receiver's answer."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def can_look_up(channel: Any) -> bool:
    """Whether the channel can say if it accepted a message, by our message id (`accepted`).

    Such a channel also has `activity_lag`: seconds before an accepted message shows in its feed.
    """
    return callable(getattr(channel, "accepted", None)) and hasattr(channel, "activity_lag")


def accepted(status: int | None, provider_id: str | None) -> Delivery:
    return Delivery(ok=True, permanent=False, status=status, reason=None, provider_id=provider_id)


def transient(reason: str, status: int | None = None, retry_after: float | None = None) -> Delivery:
    return Delivery(ok=False, permanent=False, status=status, reason=reason[:MAX_REASON_CHARS], provider_id=None,
                    retry_after=retry_after)


def permanent(reason: str, status: int | None = None) -> Delivery:
    return Delivery(ok=False, permanent=True, status=status, reason=reason[:MAX_REASON_CHARS], provider_id=None)


def stopped(reason: str, status: int | None = None) -> Delivery:
    """The channel cannot send anything now (credentials, address, no connection): not this message's fault."""
    return Delivery(ok=False, permanent=False, status=status, reason=reason[:MAX_REASON_CHARS], provider_id=None,
                    stop=True)


def failure(exc: DestinationError) -> Delivery:
    """The syncs' verdict (transport.Verdict), raised as their errors, as a delivery: a spent quota, refused
    credentials, a wrong address or no connection stop the channel; a refusal of this message is permanent;
    the rest is transient."""
    if isinstance(exc, QuotaExhausted | DestinationConfigError | DestinationUnreachable):
        return stopped(str(exc.reason), exc.status)
    if isinstance(exc, BatchRefused):
        return permanent(str(exc.reason), exc.status)
    return transient(str(exc.reason), exc.status, exc.retry_after if isinstance(exc, RetryableError) else None)


def http_delivery(client: HttpClient, response: Any, provider_id: str | None) -> Delivery:
    """2xx accepted; otherwise the syncs' verdict (`HttpClient.raise_for_status`) as a delivery."""
    if response.status_code < 300:
        return accepted(response.status_code, provider_id)
    try:
        client.raise_for_status(response, retry_after=retry_after(response))
    except DestinationError as exc:
        return failure(exc)
    return stopped(client.reason(response, "an answer that is neither success nor error"), response.status_code)


def patient_request(http: HttpClient, method: str, path: str, *, busy: Callable[[Any], bool], wait_at_most: float,
                    tries: int, **request: Any) -> Any:
    """`http.request(method, path, **request)`, sent again after the receiver's `Retry-After` while it answers
    `busy` (a refusal that delivered nothing: sending again is safe), up to `tries` times and only for waits
    of at most `wait_at_most` seconds; the last response. When no answer came, a Delivery instead: `unknown`
    if the request may have reached the receiver (timed out, connection broken), else the syncs' verdict."""
    for attempt in range(1, tries + 1):
        try:
            response = http.request(method, path, **request)
        except DestinationError as exc:
            if "timed out" in str(exc.reason) or "connection failed" in str(exc.reason):
                return transient(f"{http.platform}: outcome unknown, no answer ({exc.reason})")
            return failure(exc)
        wait = retry_after(response) if busy(response) else None
        if wait is None or attempt == tries or wait > wait_at_most:
            return response
        time.sleep(wait)
    raise AssertionError("unreachable")


def retry_after(response: Any) -> float | None:
    after = retry_after_header(response)
    if after is not None:
        return after
    reset = response.headers.get("X-RateLimit-Reset")  # SendGrid: epoch seconds
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


