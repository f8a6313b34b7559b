"""In-app and on-site messages as a channel (type `in_app` in channels.yml): "sending" a message writes it
into the inbox (inbox.py) that `attiva serve` reads, so the storefront or the app shows it to its customer
at their next page view (`GET /v1/messages/me`).

`sent` in the ledger means *available*: the message is in the inbox and will be served until it expires
(`ttl` after it was written) or the visitor dismisses it. Whether it was seen is the `message_displayed`
event the page sends back; that is the confirmation measurement counts (measurement.message_outcomes'
`opened`), as an email's open.

Guarantees: the inbox write is one local SQLite transaction, and writing a message id already there changes
nothing, so a message of unknown outcome after a crash is simply written again: exactly-once. Quiet hours do
not apply (the visitor is on the site); consent, the suppression of exits and expiry, the holdout and the
frequency caps (shared with every other channel) do, in the send path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from activations.messaging.delivery import Delivery, OutgoingMessage, accepted, stopped
from activations.messaging.inbox import InAppMessage, Inbox, stamp

DEFAULT_TTL = timedelta(days=7)


class InAppChannel:
    """Writes each message into the in-app inbox (see the module doc)."""

    dagster_kind: ClassVar[str] = "sqlite"  # the kind Dagster shows on its campaigns' assets
    recipient: ClassVar[str] = "in_app"  # addressed to the customer id: no address, no quiet hours
    resend_is_safe = True  # the inbox keeps the first write of a message id: a resend changes nothing

    def __init__(self, path: Path | str | None = None, *, ttl: timedelta = DEFAULT_TTL, timeout: float = 30.0,
                 pool_size: int = 4, from_email: str = "", from_name: str = "", clock=None):
        self.inbox = Inbox(path)
        self.ttl = ttl
        self.timeout, self.pool_size = timeout, pool_size
        self.from_email, self.from_name = from_email, from_name
        self._clock = clock or (lambda: datetime.now(UTC))

    def send(self, message: OutgoingMessage) -> Delivery:
        """Make the message available to its customer; `sent` once it is committed to the inbox."""
        now = self._clock()
        try:
            self.inbox.put([InAppMessage(
                message_id=message.message_id, customer_id=message.customer_id, campaign=message.campaign,
                step=message.step, title=message.subject, body=message.text.strip(), link=message.link or None,
                priority=message.priority, available_at=stamp(now), expires_at=stamp(now + self.ttl))])
        except OSError as exc:  # the folder is gone or read-only: nothing can go until someone fixes it
            return stopped(f"in-app inbox {self.inbox.path}: {exc}")
        except Exception as exc:  # sqlite3.Error: a locked or corrupt file, the same for every message
            return stopped(f"in-app inbox {self.inbox.path}: {type(exc).__name__}: {exc}")
        return accepted(None, message.message_id)

    def close(self) -> None:
        self.inbox.close()
