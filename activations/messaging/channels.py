"""The wire: one triggered message out over SMTP, the SendGrid mail send API, a signed webhook,
or as a Salesforce Task on the person's Contact for the sales team.

A `Channel` sends one `OutgoingMessage` per call and answers a `Delivery`; it never
raises for what the receiver says. The verdict on a failure is the syncs' (transport.Verdict):
`permanent` (SMTP 5xx, HTTP 4xx: this message would be refused again), transient (SMTP 4xx,
HTTP 429/5xx, timeouts: this message may go later), or `stop` (refused credentials, a wrong
URL, no connection: no message would go until someone acts, so the pass stops using the
channel and keeps its messages for the next one). A transient failure after the message body
left ("outcome unknown") says so in `reason`: the message may have been accepted.

Instances are declared in the root `channels.yml`; secrets come only from the
environment (`ATTIVA_<NAME>_PASSWORD`, `ATTIVA_<NAME>_TOKEN`), as for destinations.
"""

from __future__ import annotations

import os
import queue
import re
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.contentmanager import raw_data_manager
from email.header import Header
from email.message import EmailMessage
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import yaml

from activations import settings
from activations.destinations.base import (
    BatchRefused,
    DestinationConfigError,
    DestinationError,
    QuotaExhausted,
    RetryableError,
    Secret,
)
from activations.destinations.config import LOOPBACK_HOSTS, env_prefix, sandbox_url
from activations.destinations.salesforce import raise_for_error
from activations.destinations.transport import (
    CONNECT_RETRY_DELAYS,
    DestinationUnreachable,
    HttpClient,
    dumps,
    response_json,
    retry_after_header,
)
from activations.destinations.webhook import SIGNATURE_HEADER, signature

MESSAGE_ID_ARG = "attiva_message_id"  # the custom arg carrying our message id (SendGrid)
# How long an accepted message may take to show in SendGrid's Email Activity: one missing
# sooner is not yet taken for "not accepted". 0 for the sandbox, whose feed is immediate.
ACTIVITY_LAG_SECONDS = 600.0
MAX_REASON_CHARS = 300
# Set by the channel itself: a message's own headers may not override them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("From", "To", "Subject", "Date", "Message-ID", "X-Attiva-Message-Id", "X-Attiva-Campaign",
              "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
)


class _WirePolicy(Compat32):
    """compat32 with CRLF; an ASCII header that fits one line (RFC 5322: 998 characters) is written as is.

    compat32 re-folds every header through `email.header.Header`, about 50 µs each.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, str) and value.isascii() and len(name) + len(value) < 990:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


MIME_POLICY = _WirePolicy(linesep="\r\n", cte_type="7bit")
MAX_LINE = 998  # SMTP's line limit: a longer body line goes base64
_MESSAGE_ID = re.compile(r"[!-~]+")  # printable ASCII, no spaces
_SMTP_QUEUE_ID = re.compile(rb"queued as\s+(\S+)", re.IGNORECASE)


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


class ChannelConfigError(ValueError):
    """channels.yml is wrong, or a secret is missing; names the file, the channel and the field."""

    def __init__(self, reason: str, *, file: str | None = None, channel: str | None = None,
                 field: str | None = None) -> None:
        where = ", ".join(
            part for part in (f"file {file}" if file else "", f"channel {channel!r}" if channel else "",
                              f"field {field!r}" if field else "") if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)
        self.file, self.channel, self.field = file, channel, field


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


# ---- SMTP ---------------------------------------------------------------------------------------


def header_message_id(message: OutgoingMessage) -> str:
    """The Message-ID header: ``<id>``, with the sender's domain appended when the id has none."""
    mid = message.message_id.strip().strip("<>")
    if not mid or not _MESSAGE_ID.fullmatch(mid) or "<" in mid or ">" in mid:
        raise ValueError(f"message id {message.message_id!r} cannot be a Message-ID (printable ASCII, no spaces)")
    if "@" not in mid:
        mid = f"{mid}@{message.from_email.rpartition('@')[2] or 'attiva'}"
    return f"<{mid}>"


def _header(name: str, value: str) -> str | Header:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} contains a line break")
    return value if value.isascii() else Header(value, "utf-8", header_name=name)


def _address(name: str | None, email: str) -> str:
    if not email or not email.isascii() or any(c in email for c in " <>\r\n,;"):
        raise ValueError(f"not a deliverable address: {email!r}")
    if name and ("\r" in name or "\n" in name):
        raise ValueError("a display name contains a line break")
    return formataddr((name or "", email), "utf-8")


def build_email(message: OutgoingMessage) -> EmailMessage:
    """The MIME message: multipart/alternative (text, then HTML), our ids in Message-ID and X-Attiva-Message-Id.

    Built under the compat32 policy with explicitly encoded headers: the default policy's
    header registry costs over a millisecond a message, which alone would cap a sending
    process near 500 messages/s. Line breaks in header values are refused (no injection).
    """
    email = EmailMessage(policy=MIME_POLICY)
    email["From"] = _address(message.from_name, message.from_email)
    email["To"] = _address(message.to_name, message.to_email)
    email["Subject"] = _header("Subject", message.subject)
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = header_message_id(message)
    email["X-Attiva-Message-Id"] = _header("X-Attiva-Message-Id", message.message_id)
    if message.campaign:
        email["X-Attiva-Campaign"] = _header("X-Attiva-Campaign", message.campaign)
    for name, value in message.headers.items():
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name} is set by the channel")
        email[name] = _header(name, str(value))
    email.set_content(message.text, cte=_transfer_encoding(message.text), content_manager=raw_data_manager)
    email.add_alternative(message.html, subtype="html", cte=_transfer_encoding(message.html),
                          content_manager=raw_data_manager)
    # A boundary chosen here: "=_" never occurs in base64, and a random one not in 7bit text.
    # (Left to the generator, it compiles a fresh regex per message to check.)
    email.set_boundary(f"=_attiva_{uuid.uuid4().hex}")
    return email


def _transfer_encoding(body: str) -> str:
    """7bit when the body is ASCII in lines SMTP carries as they are, else base64 (C-fast, unlike QP here)."""
    if body.isascii() and all(len(line) <= MAX_LINE for line in body.splitlines()):
        return "7bit"
    return "base64"


class SmtpChannel:
    """Real SMTP through a small pool of reused connections (thread-safe).

    A connection found closed when a transaction starts is replaced once; a failure after
    the body was sent is reported as transient with "outcome unknown" in the reason.
    """

    dagster_kind: ClassVar[str] = "email"  # the kind Dagster shows on its campaigns' assets

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: Secret | None = None,
        timeout: float = 30.0,
        pool_size: int = 4,
        from_email: str = "",
        from_name: str = "",
        local_hostname: str = "attiva.localhost",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if bool(username) != (password is not None and bool(password.reveal())):
            raise ValueError("username and password go together")
        if pool_size < 1:
            raise ValueError("pool_size must be positive")
        self.host, self.port = host, int(port)
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.pool_size = pool_size
        self.from_email, self.from_name = from_email, from_name
        # Given explicitly: smtplib would otherwise resolve this machine's FQDN on every connection.
        self.local_hostname = local_hostname
        self.ssl_context = ssl_context
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: queue.LifoQueue[smtplib.SMTP] = queue.LifoQueue()
        self._closed = False

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self.host!r}, port={self.port}, starttls={self.starttls}, user={self.username!r})"

    def send(self, message: OutgoingMessage) -> Delivery:
        """One SMTP transaction (MAIL, RCPT, DATA) on a pooled connection."""
        if self._closed:
            raise RuntimeError("the channel is closed")
        try:
            payload = build_email(message).as_bytes()
        except (ValueError, TypeError) as exc:
            return permanent(f"smtp: invalid message: {exc}")
        with self._slots:
            for attempt in (1, 2):
                conn = self._take()
                fresh = conn is None
                try:
                    if conn is None:
                        conn = self._connect_retrying()
                    delivery, reusable = self._transact(conn, message, payload)
                except _Stale:
                    # Closed by the server while idle, before anything of this message was sent.
                    _quietly_close(conn)
                    if fresh or attempt == 2:
                        return transient("smtp: connection closed by the server")
                    continue
                except _Failed as failed:
                    _quietly_close(conn)
                    return failed.delivery
                if reusable:
                    self._idle.put(conn)
                else:
                    _quietly_close(conn)
                return delivery
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every idle connection (QUIT); later sends raise."""
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                _quietly_close(conn)

    # ---- the exchange -------------------------------------------------------------------------

    def _take(self) -> smtplib.SMTP | None:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return None

    def _reason(self, text: str) -> str:
        return self._password.redact(text) if self._password is not None else text

    def _connect(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = None
        try:
            # Raises SMTPConnectError (closing the socket) unless the greeting is 220.
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname)
            conn.ehlo()
            if self.starttls:
                if not conn.has_extn("starttls"):
                    raise _Failed(stopped("smtp: the server does not offer STARTTLS (not sending in clear)"))
                conn.starttls(context=self.ssl_context or ssl.create_default_context())
                conn.ehlo()
            if self.username and self._password is not None:
                conn.login(self.username, self._password.reveal())
        except _Failed:
            _quietly_close(conn)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(conn)
            # Wrong credentials are the configuration's fault, not the message's: every message would fail alike.
            raise _Failed(stopped(self._reason(f"smtp {exc.smtp_code}: authentication refused"),
                                  exc.smtp_code)) from None
        except smtplib.SMTPNotSupportedError as exc:
            _quietly_close(conn)
            raise _Failed(stopped(self._reason(f"smtp: {exc}"))) from None
        except smtplib.SMTPResponseException as exc:  # the greeting, EHLO or STARTTLS refused: the server, not the message
            _quietly_close(conn)
            answer = _answer(exc.smtp_code, exc.smtp_error, self._reason)
            raise _Failed(stopped(answer.reason or "", answer.status) if answer.permanent else answer) from None
        except (smtplib.SMTPException, OSError) as exc:
            _quietly_close(conn)
            raise _NotConnected(self._reason(f"smtp: cannot connect to {self.host}:{self.port} "
                                             f"({type(exc).__name__}: {exc})")) from None
        return conn

    def _connect_retrying(self) -> smtplib.SMTP:
        """A new connection, tried again quickly when none could be opened (as the syncs' HTTP clients do);
        still none stops the channel."""
        for delay in CONNECT_RETRY_DELAYS:
            try:
                return self._connect()
            except _NotConnected:
                time.sleep(delay)
        try:
            return self._connect()
        except _NotConnected as failure:
            raise _Failed(stopped(str(failure))) from None

    def _transact(self, conn: smtplib.SMTP, message: OutgoingMessage, payload: bytes) -> tuple[Delivery, bool]:
        """The delivery and whether the connection can be reused."""
        try:
            code, text = conn.mail(message.from_email)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            raise _Stale() from None
        except (smtplib.SMTPException, OSError) as exc:
            raise _Failed(transient(self._reason(f"smtp: MAIL FROM failed ({type(exc).__name__})"))) from None
        if code == 421:
            raise _Stale()
        try:
            if code != 250:  # the sender refused (an address not allowed, authentication required): every message alike
                return self._refused(conn, code, text, sender=True)
            code, text = conn.rcpt(message.to_email)
            if code not in (250, 251):
                return self._refused(conn, code, text)
        except (smtplib.SMTPException, OSError) as exc:
            raise _Failed(transient(self._reason(f"smtp: connection lost before DATA ({type(exc).__name__})"))) \
                from None
        try:
            code, text = conn.data(payload)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): nothing was sent
            return self._refused(conn, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPException, OSError) as exc:
            raise _Failed(transient(self._reason(
                f"smtp: outcome unknown, connection lost during DATA ({type(exc).__name__})"))) from None
        if code != 250:
            return _answer(code, text, self._reason), code != 421
        found = _SMTP_QUEUE_ID.search(text or b"")
        provider_id = found.group(1).decode("ascii", "replace") if found else None
        return accepted(code, provider_id), True

    def _refused(self, conn: smtplib.SMTP, code: int, text: bytes, *, sender: bool = False) -> tuple[Delivery, bool]:
        """A refusal inside the transaction: reset it so the connection can carry the next message.

        A permanent refusal of the sender (MAIL FROM) or of unauthenticated use (530) stops the channel:
        it is the configuration's, not this message's."""
        delivery = _answer(code, text, self._reason)
        if delivery.permanent and (sender or code == 530):
            delivery = stopped(delivery.reason or "", code)
        if code == 421:
            return delivery, False
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            return delivery, False
        return delivery, True


class _Stale(Exception):
    """The pooled connection was closed before this message's transaction started."""


class _NotConnected(Exception):
    """No connection could be opened to the SMTP server."""


class _Failed(Exception):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.reason)
        self.delivery = delivery


def _answer(code: int, text: bytes | str | None, redact) -> Delivery:
    """4xx transient, 5xx permanent (anything else: transient)."""
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")
    reason = redact(" ".join(f"smtp {code}: {detail}".split()))
    if 500 <= code < 600:
        return permanent(reason, code)
    return transient(reason, code)


def _quietly_close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except OSError:
        pass


# ---- HTTP channels ------------------------------------------------------------------------------


def _http_delivery(client: HttpClient, response: Any, provider_id: str | None) -> Delivery:
    """2xx accepted; otherwise the syncs' verdict (`HttpClient.raise_for_status`) as a delivery."""
    if response.status_code < 300:
        return accepted(response.status_code, provider_id)
    try:
        client.raise_for_status(response, retry_after=_retry_after(response))
    except DestinationError as exc:
        return failure(exc)
    return stopped(client.reason(response, "an answer that is neither success nor error"), response.status_code)


def _retry_after(response: Any) -> float | None:
    after = retry_after_header(response)
    if after is not None:
        return after
    reset = response.headers.get("X-RateLimit-Reset")  # SendGrid: epoch seconds
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


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
        return _http_delivery(self.http, response, response.headers.get("X-Message-Id"))

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
            return _http_delivery(self.http, response, None)
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


class SalesforceTaskChannel:
    """A Salesforce Task on the person's Contact, for the sales team to act on (not an email to them).

    The Task is upserted on an external id field holding our message id
    (``PATCH /sobjects/Task/<field>/<message id>``), so a retry after a timeout or a 5xx
    updates the task it may already have created instead of adding a second one: unlike an
    email, a resend is safe. The Contact is referenced by the external id the leads sync
    writes (``Who: {attributes: {type: Contact}, <field>: customer_id}``); while it is not in
    Salesforce yet (the sync has not run) the failure is transient and the next pass retries,
    until the step expires.
    """

    dagster_kind: ClassVar[str] = "salesforce"  # the kind Dagster shows on its campaigns' assets

    resend_is_safe = True  # an upsert on the message id: a message of unknown outcome is simply sent again

    def __init__(self, base_url: str, token: Secret, *, api_version: str = "62.0",
                 contact_external_id_field: str = "Attiva_Customer_Id__c",
                 task_external_id_field: str = "Attiva_Message_Id__c", owner_id: str | None = None,
                 priority: str = "Normal", due_in_days: int = 2, timeout: float = 30.0, pool_size: int = 4,
                 from_email: str = "", from_name: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.contact_field, self.task_field = contact_external_id_field, task_external_id_field
        self.owner_id, self.priority, self.due_in_days = owner_id, priority, due_in_days
        self.from_email, self.from_name = from_email, from_name
        self.http = HttpClient(self.base_url, token, platform="salesforce", max_concurrency=pool_size,
                               connect_retry_delays=CONNECT_RETRY_DELAYS,
                               read_timeout=timeout, headers={"Authorization": f"Bearer {token.reveal()}"})

    def __repr__(self) -> str:
        return f"SalesforceTaskChannel(base_url={self.base_url!r})"

    def body(self, message: OutgoingMessage, today: datetime | None = None) -> dict[str, Any]:
        """The Task's fields: the rendered subject and text, due `due_in_days` from today."""
        if not message.customer_id:
            raise ValueError("a task needs the customer's id to find their Contact")
        subject = " ".join(message.subject.split())
        due = (today or datetime.now(UTC)).date() + timedelta(days=self.due_in_days)
        record: dict[str, Any] = {
            # Salesforce refuses a longer subject outright; a cut one still tells sales what to do.
            "Subject": subject if len(subject) <= 255 else subject[:254] + "…",
            "Description": message.text,
            "Who": {"attributes": {"type": "Contact"}, self.contact_field: message.customer_id},
            "Status": "Not Started",
            "Priority": self.priority,
            "ActivityDate": due.isoformat(),
        }
        if self.owner_id:
            record["OwnerId"] = self.owner_id
        return record

    def send(self, message: OutgoingMessage) -> Delivery:
        """201 (created) or 200 (updated: an earlier attempt had created it) is accepted; the Task id is the provider id."""
        try:
            body = self.body(message)
        except ValueError as exc:
            return permanent(f"salesforce task: invalid message: {exc}")
        path = (f"/services/data/v{self.api_version}/sobjects/Task/{self.task_field}/"
                f"{quote(message.message_id, safe='')}")
        try:
            response = self.http.request("PATCH", path, json_body=body)
        except DestinationError as exc:  # timeouts too: the upsert makes the retry safe
            return failure(exc)
        answer = response_json(response)
        if response.status_code < 300:
            task_id = answer.get("id") if isinstance(answer, dict) else None
            return accepted(response.status_code, str(task_id) if task_id else None)
        first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else {}
        if first.get("errorCode") == "INVALID_FIELD" and "Foreign key external ID" in str(first.get("message")):
            return transient(f"salesforce {response.status_code}: the Contact with {self.contact_field} = "
                             f"{message.customer_id} is not in Salesforce yet (the leads sync creates it)",
                             response.status_code)
        try:  # Salesforce's own codes first: a spent 24 h allocation stops the channel, concurrency is transient
            raise_for_error(self.http, response)
        except DestinationError as exc:
            return failure(exc)
        return _http_delivery(self.http, response, None)

    def close(self) -> None:
        self.http.close()


# ---- channels.yml -------------------------------------------------------------------------------

SECRET_FIELDS = ("password", "token", "secret", "api_key")
COMMON_OPTIONS = {"type", "from", "timeout", "pool_size"}
CHANNEL_CLASSES: dict[str, type] = {"smtp": SmtpChannel, "sendgrid_mail": SendGridMailChannel,
                                    "webhook": WebhookMessageChannel, "salesforce_task": SalesforceTaskChannel}


def dagster_kind(channel_type: str) -> str | None:
    """The Dagster kind a channel of this type (channels.yml `type`) declares; None for an unknown type."""
    cls = CHANNEL_CLASSES.get(channel_type)
    return cls.dagster_kind if cls else None

TYPE_OPTIONS: dict[str, set[str]] = {
    "smtp": {"host", "port", "starttls", "username"},
    "sendgrid_mail": {"activity_lag"},
    "webhook": {"path"},
    "salesforce_task": {"api_version", "contact_external_id_field", "task_external_id_field", "owner_id",
                        "priority", "due_in_days"},
}
TASK_PRIORITIES = ("High", "Normal", "Low")
_API_VERSION = re.compile(r"\d+\.\d")


def default_channels_path() -> Path:
    """ATTIVA_CHANNELS, else channels.yml at the project root."""
    return Path(os.environ.get("ATTIVA_CHANNELS", settings.project_root() / "channels.yml"))


def load_channel_entries(path: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """The entries of channels.yml (not yet validated: `channel_from_config` does that)."""
    path = Path(path) if path is not None else default_channels_path()
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChannelConfigError("file not found", file=source) from None
    except yaml.YAMLError as exc:
        raise ChannelConfigError(f"not valid YAML: {exc}", file=source) from None
    entries = raw.get("channels") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise ChannelConfigError("expected a top-level 'channels:' mapping", file=source)
    return entries


def load_channels(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """A client for every channel in channels.yml; close them when done. The first bad entry raises."""
    channels, errors = load_usable_channels(path, env)
    if errors:
        for channel in channels.values():
            channel.close()
        raise next(iter(errors.values()))
    return channels


def load_usable_channels(path: Path | str | None = None, env: Mapping[str, str] | None = None
                         ) -> tuple[dict[str, Channel], dict[str, ChannelConfigError]]:
    """A client for every valid channel in channels.yml (close them when done), and the mistake of each
    other entry: a bad entry stops only the campaigns sent by it. An unreadable file raises."""
    path = Path(path) if path is not None else default_channels_path()
    env = os.environ if env is None else env
    channels: dict[str, Channel] = {}
    errors: dict[str, ChannelConfigError] = {}
    for name, entry in load_channel_entries(path).items():
        try:
            channels[name] = channel_from_config(name, entry, env, source=str(path))
        except ChannelConfigError as exc:
            errors[name] = exc
    return channels, errors


def channel_from_config(name: str, entry: Mapping[str, Any], env: Mapping[str, str], *,
                        source: str | None = None) -> Channel:
    """The client for one channels.yml entry; secrets from `ATTIVA_<NAME>_PASSWORD` / `_TOKEN` only."""

    def fail(reason: str, option: str | None = None) -> ChannelConfigError:
        return ChannelConfigError(reason, file=source, channel=name, field=option)

    if not isinstance(entry, Mapping):
        raise fail("expected a mapping with at least 'type'")
    kind = entry.get("type")
    if kind not in TYPE_OPTIONS:
        raise fail(f"unknown type {kind!r}; known: {', '.join(sorted(TYPE_OPTIONS))}", "type")
    prefix = env_prefix(name)
    for key in entry:
        if key in SECRET_FIELDS:
            variable = f"{prefix}_PASSWORD" if kind == "smtp" else f"{prefix}_TOKEN"
            raise fail(f"secrets do not go in the file: set {variable} in the environment", key)
        if key not in COMMON_OPTIONS | TYPE_OPTIONS[kind]:
            raise fail(f"unknown option; {kind} accepts: {', '.join(sorted(COMMON_OPTIONS | TYPE_OPTIONS[kind]))}",
                       key)

    from_name, from_email = parseaddr(str(entry.get("from") or ""))
    if entry.get("from") and "@" not in from_email:
        raise fail("expected 'Name <address@domain>'", "from")
    timeout = _number(entry, "timeout", 30.0, float, fail)
    pool_size = int(_number(entry, "pool_size", 4, int, fail))
    common = {"timeout": timeout, "pool_size": pool_size, "from_email": from_email, "from_name": from_name}

    if kind == "smtp":
        host = env.get(f"{prefix}_HOST") or str(entry.get("host") or "127.0.0.1")
        raw_port = env.get(f"{prefix}_PORT") or entry.get("port") or env.get("ATTIVA_SMTP_PORT") or settings.SMTP_PORT
        try:
            port = int(raw_port)
        except (TypeError, ValueError):
            raise fail(f"expected a port number, got {raw_port!r}", "port") from None
        starttls = entry.get("starttls", False)
        if not isinstance(starttls, bool):
            raise fail("expected true or false", "starttls")
        username = env.get(f"{prefix}_USERNAME") or entry.get("username") or None
        password = env.get(f"{prefix}_PASSWORD")
        if username and not password:
            raise fail(f"a username needs {prefix}_PASSWORD in the environment", "username")
        _require_sender(entry, fail)
        return SmtpChannel(host, port, starttls=starttls, username=username,
                           password=Secret(password) if username and password else None, **common)

    if kind == "sendgrid_mail":
        url = env.get(f"{prefix}_URL") or sandbox_url("sendgrid", env)
        token = env.get(f"{prefix}_TOKEN") or _sandbox_token(url, "sendgrid", prefix, fail)
        # The sandbox's activity feed is immediate; SendGrid's may take minutes.
        lag_default = 0.0 if (urlsplit(url).hostname or "") in LOOPBACK_HOSTS else ACTIVITY_LAG_SECONDS
        lag = entry.get("activity_lag", lag_default)
        if isinstance(lag, bool) or not isinstance(lag, int | float) or lag < 0:
            raise fail("expected seconds, 0 or more", "activity_lag")
        _require_sender(entry, fail)
        return SendGridMailChannel(url, Secret(token), activity_lag=lag, **common)

    if kind == "salesforce_task":
        return _salesforce_task(entry, env, prefix, common, fail)

    path = str(entry.get("path") or "/attiva/messages")
    base = env.get(f"{prefix}_URL") or sandbox_url("webhook", env)
    url = base.rstrip("/") + (path if path.startswith("/") else f"/{path}")
    token = env.get(f"{prefix}_TOKEN") or _sandbox_token(url, "webhook", prefix, fail)
    return WebhookMessageChannel(url, Secret(token), **common)


def _require_sender(entry: Mapping[str, Any], fail) -> None:
    """An email needs a sender; there is no default one (it would be someone else's brand)."""
    if not entry.get("from"):
        raise fail("required: who the messages come from, as 'Name <address@domain>'", "from")


def _salesforce_task(entry: Mapping[str, Any], env: Mapping[str, str], prefix: str, common: dict[str, Any],
                     fail) -> SalesforceTaskChannel:
    version = str(entry.get("api_version") or "62.0").removeprefix("v")
    if not _API_VERSION.fullmatch(version):
        raise fail(f"expected a version like \"62.0\", got {entry.get('api_version')!r}", "api_version")
    priority = entry.get("priority", "Normal")
    if priority not in TASK_PRIORITIES:
        raise fail(f"expected one of {', '.join(TASK_PRIORITIES)}", "priority")
    due_in_days = entry.get("due_in_days", 2)
    if isinstance(due_in_days, bool) or not isinstance(due_in_days, int) or due_in_days < 0:
        raise fail("expected a whole number of days, 0 or more", "due_in_days")
    fields = {}
    for option, default in (("contact_external_id_field", "Attiva_Customer_Id__c"),
                            ("task_external_id_field", "Attiva_Message_Id__c")):
        value = str(entry.get(option) or default)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise fail("expected a field's API name, e.g. Attiva_Customer_Id__c", option)
        fields[option] = value
    url = env.get(f"{prefix}_URL") or sandbox_url("salesforce", env)
    token = env.get(f"{prefix}_TOKEN") or _sandbox_token(url, "salesforce", prefix, fail)
    return SalesforceTaskChannel(url, Secret(token), api_version=version, owner_id=entry.get("owner_id") or None,
                                 priority=priority, due_in_days=due_in_days, **fields, **common)


def _sandbox_token(url: str, sandbox_type: str, prefix: str, fail) -> str:
    if (urlsplit(url).hostname or "") not in LOOPBACK_HOSTS:
        # Never send the sandbox's well-known token to a real platform.
        raise fail(f"{prefix}_URL points away from this machine: set {prefix}_TOKEN too", "token")
    return f"sandbox-{sandbox_type}-token"


def _number(entry: Mapping[str, Any], key: str, default: float, kind: type, fail) -> float:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise fail(f"expected {'an integer' if kind is int else 'a number'}", key)
    if value <= 0:
        raise fail("must be positive", key)
    return value


__all__ = [
    "Channel",
    "ChannelConfigError",
    "Delivery",
    "OutgoingMessage",
    "SalesforceTaskChannel",
    "SendGridMailChannel",
    "SmtpChannel",
    "WebhookMessageChannel",
    "build_email",
    "channel_from_config",
    "load_channels",
    "load_usable_channels",
]
