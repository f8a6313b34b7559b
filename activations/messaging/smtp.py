"""Real SMTP: one message per transaction on a small pool of reused connections."""

from __future__ import annotations

import queue
import re
import smtplib
import ssl
import threading
import uuid
from datetime import UTC
from email.contentmanager import raw_data_manager
from email.header import Header
from email.message import EmailMessage
from email.policy import Compat32
from email.utils import formataddr, formatdate
from typing import Any, ClassVar

from activations.destinations.base import Secret
from activations.destinations.transport import CONNECT_RETRY_DELAYS, retry_connecting
from activations.messaging.delivery import (
    RESERVED_HEADERS,
    Delivery,
    OutgoingMessage,
    accepted,
    permanent,
    stopped,
    transient,
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
    # The pass's clock: the wall clock, unless the run is pinned to another as_of (a replay, the simulator).
    sent = message.sent_at.replace(tzinfo=UTC).timestamp() if message.sent_at else None
    email["Date"] = formatdate(sent, usegmt=True)
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
        try:
            return retry_connecting(self._connect, _NotConnected, CONNECT_RETRY_DELAYS)
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


