"""The sandbox's mail server: real SMTP on loopback that stores every message it accepts.

Built on aiosmtpd, served on the running event loop (the HTTP sandbox's own, or a
thread's for :func:`running_smtp`). It accepts any recipient, offers STARTTLS when
given a certificate and key, asks for AUTH when given a username and password, and
injects faults: a share of RCPT commands answered ``451`` (transient, drawn from a
seeded stream, so a retry may pass) or ``550`` (permanent, chosen by a hash of seed
and address, so the same mailbox is refused again), and latency before each DATA reply.

Every accepted message is one line of ``<state>/smtp/messages.jsonl`` (append-only:
``id, received_at, date (the Date header, UTC), mail_from, rcpt_tos, message_id, attiva_message_id, attiva_template, subject, size``
and ``raw``, or ``raw_base64`` when the bytes are not UTF-8), so what was received
survives restarts; protocol counters are kept in ``<state>/smtp/counters.json``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import os
import random
import re
import socket
import ssl
import threading
import uuid
import weakref
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from hashlib import blake2b
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.wire import dumps, loads

log = logging.getLogger(__name__)

SERVER_NAME = "attiva-sandbox"  # fixed: aiosmtpd would otherwise resolve the FQDN on every connection
SMTP_FAULT_FIELDS = ("transient_rate", "permanent_rate", "latency_ms", "seed")
SMTP_OPTIONS = {"tls_cert", "tls_key", "require_starttls", "username", "password", "max_message_bytes", "faults",
                *SMTP_FAULT_FIELDS}



class _QuietAiosmtpd(logging.Filter):
    """aiosmtpd 1.4 warns that its own ``Session.login_data`` is deprecated on every successful AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in str(record.msg)


_aiosmtpd_log = logging.getLogger("mail.log")
# aiosmtpd logs every command at INFO; at hundreds of messages a second that is the bottleneck.
if _aiosmtpd_log.level == logging.NOTSET:
    _aiosmtpd_log.setLevel(logging.WARNING)
if not any(isinstance(f, _QuietAiosmtpd) for f in _aiosmtpd_log.filters):
    _aiosmtpd_log.addFilter(_QuietAiosmtpd())


@dataclass(frozen=True)
class SmtpFaults:
    """What to inject into SMTP traffic; all zero by default."""

    transient_rate: float = 0.0  # share of RCPT answered 451 (seeded stream: a retry may pass)
    permanent_rate: float = 0.0  # share of addresses answered 550 (hash of seed and address: always the same)
    latency_ms: float = 0.0  # added before each DATA reply
    seed: int = 1

    def validated(self) -> SmtpFaults:
        for name in ("transient_rate", "permanent_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.transient_rate + self.permanent_rate > 1.0:
            raise ValueError("transient_rate + permanent_rate must not exceed 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        return self

    def updated(self, changes: Mapping[str, Any]) -> SmtpFaults:
        """A copy with ``changes`` applied (unknown keys refused), validated."""
        unknown = set(changes) - set(SMTP_FAULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown SMTP fault settings: {sorted(unknown)}")
        typed = {
            f.name: int(changes[f.name]) if f.name == "seed" else float(changes[f.name])
            for f in fields(self)
            if f.name in changes
        }
        return replace(self, **typed).validated()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SmtpSettings:
    """How the mail server behaves (where it listens is given when it starts)."""

    tls_cert: Path | None = None  # with tls_key: STARTTLS is offered
    tls_key: Path | None = None
    require_starttls: bool = False  # refuse everything but EHLO/STARTTLS/QUIT before TLS
    username: str | None = None  # with password: MAIL FROM needs a successful AUTH first
    password: str | None = field(default=None, repr=False)
    max_message_bytes: int = 10 * 1024 * 1024
    faults: SmtpFaults = field(default_factory=SmtpFaults)

    @classmethod
    def build(cls, options: Mapping[str, Any] | None = None) -> SmtpSettings:
        """From keyword options: the fields above, with fault fields either flat or under ``faults``."""
        options = dict(options or {})
        unknown = set(options) - SMTP_OPTIONS
        if unknown:
            raise TypeError(f"unknown SMTP option(s): {sorted(unknown)}")
        faults = options.pop("faults", None)
        if isinstance(faults, SmtpFaults):
            fault_settings = faults.validated()
        else:
            fault_settings = SmtpFaults().updated(dict(faults or {}))
        flat = {k: options.pop(k) for k in SMTP_FAULT_FIELDS if k in options}
        fault_settings = fault_settings.updated(flat) if flat else fault_settings
        settings = cls(faults=fault_settings)
        for name in ("tls_cert", "tls_key"):
            if options.get(name) is not None:
                settings = replace(settings, **{name: Path(options[name])})
        if (settings.tls_cert is None) != (settings.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        username, password = options.get("username"), options.get("password")
        if bool(username) != bool(password):
            raise ValueError("username and password go together")
        return replace(
            settings,
            require_starttls=bool(options.get("require_starttls", False)),
            username=username or None,
            password=password or None,
            max_message_bytes=int(options.get("max_message_bytes", settings.max_message_bytes)),
        )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        return context


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header_text(value: Any) -> str | None:
    """A header as text, RFC 2047 encoded words decoded."""
    if value is None:
        return None
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError):
        return str(value)


def _message_id(value: Any) -> str | None:
    """A Message-ID without its angle brackets (how the HTTP views name messages)."""
    text = _header_text(value)
    if not text:
        return None
    return text.strip().strip("<>").strip() or None


class MailStore:
    """``messages.jsonl`` (append-only) and ``counters.json`` in one folder, with an index for reads.

    Writes append a line; reads first index whatever was appended since the last read,
    by this process or another one sharing the folder.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "messages.jsonl"
        self.counters_path = self.directory / "counters.json"
        self._lock = threading.RLock()
        self._file: Any = None
        self._entries: list[dict[str, Any]] = []  # metadata, with "_at": (offset, length) in the file
        self._indexed_to = 0
        self.counters = self._load_counters()
        self.refresh()

    # ---- writing ------------------------------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one message; it is on disk (in the OS's hands) when this returns."""
        line = dumps(record) + b"\n"
        with self._lock:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open for the appends
            self._file.write(line)

    def save_counters(self) -> None:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.counters_path.with_name(f".counters.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(dumps(self.counters))
            os.replace(tmp, self.counters_path)

    def count(self, key: str, code: str | None = None, by: int = 1) -> None:
        with self._lock:
            if code is None:
                self.counters[key] = self.counters.get(key, 0) + by
            else:
                group = self.counters.setdefault(key, {})
                group[code] = group.get(code, 0) + by

    def reset(self) -> None:
        """Forget every message and counter."""
        with self._lock:
            if self.path.exists():
                os.truncate(self.path, 0)  # the append handle (O_APPEND) carries on at the new end
            self._entries, self._indexed_to = [], 0
            self.counters = _empty_counters()
            self.save_counters()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # ---- reading ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Index the lines appended since the last call."""
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                self._entries, self._indexed_to = [], 0
                return
            if size < self._indexed_to:  # truncated by a reset elsewhere
                self._entries, self._indexed_to = [], 0
            if size == self._indexed_to:
                return
            with open(self.path, "rb") as f:
                f.seek(self._indexed_to)
                chunk = f.read(size - self._indexed_to)
            end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
            offset = self._indexed_to
            for line in chunk[:end].splitlines(keepends=True):
                try:
                    record = loads(line)
                except ValueError:
                    log.warning("skipping an unreadable line at offset %d of %s", offset, self.path)
                else:
                    meta = {k: v for k, v in record.items() if k not in ("raw", "raw_base64")}
                    meta["_at"] = (offset, len(line))
                    self._entries.append(meta)
                offset += len(line)
            self._indexed_to = offset

    @property
    def total(self) -> int:
        self.refresh()
        return len(self._entries)

    def messages(self, to: str | None = None, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
        """How many messages match ``to`` (all when None), and the metadata of the last ``limit`` of them."""
        self.refresh()
        with self._lock:
            entries = self._entries
            if to:
                wanted = to.strip().lower()
                entries = [e for e in entries if wanted in (r.lower() for r in e.get("rcpt_tos", ()))]
            last = entries[-limit:] if limit > 0 else []
            return len(entries), [{k: v for k, v in e.items() if k != "_at"} for e in last]

    def get(self, key: str) -> dict[str, Any] | None:
        """The latest message whose sandbox ``id``, Message-ID or X-Attiva-Message-Id is ``key``, with its raw bytes."""
        self.refresh()
        wanted = key.strip().strip("<>")
        with self._lock:
            for entry in reversed(self._entries):
                if wanted in (entry.get("id"), entry.get("message_id"), entry.get("attiva_message_id")):
                    offset, length = entry["_at"]
                    with open(self.path, "rb") as f:
                        f.seek(offset)
                        record = loads(f.read(length))
                    copies = sum(
                        1 for e in self._entries
                        if wanted in (e.get("id"), e.get("message_id"), e.get("attiva_message_id"))
                    )
                    return {**record, "copies": copies}
        return None

    def _load_counters(self) -> dict[str, Any]:
        try:
            data = loads(self.counters_path.read_bytes())
        except (FileNotFoundError, ValueError):
            return _empty_counters()
        return {**_empty_counters(), **data} if isinstance(data, dict) else _empty_counters()


def _empty_counters() -> dict[str, Any]:
    return {"connections": 0, "transactions": 0, "messages": 0, "bytes": 0, "rcpt": {}, "auth_failures": 0}


def message_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored message for ``GET /_sandbox/mail/{id}``: metadata, raw text, headers and the decoded parts."""
    raw = record.get("raw")
    data = raw.encode() if raw is not None else base64.b64decode(record.get("raw_base64") or b"")
    parsed = message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)  # parts read with \n
    headers: dict[str, Any] = {}
    for name, value in parsed.items():
        text = str(value)
        if name in headers:
            headers[name] = [*headers[name], text] if isinstance(headers[name], list) else [headers[name], text]
        else:
            headers[name] = text
    parts: dict[str, str] = {}
    for part in parsed.walk():
        ctype = part.get_content_type()
        if ctype in ("text/plain", "text/html") and not part.is_multipart() and ctype not in parts:
            with contextlib.suppress(LookupError, ValueError):
                parts[ctype] = part.get_content()
    return {
        **{k: v for k, v in record.items() if k != "raw_base64"},
        "raw": raw if raw is not None else data.decode("utf-8", "replace"),
        "headers": headers,
        "content_type": parsed.get_content_type(),
        "text": parts.get("text/plain"),
        "html": parts.get("text/html"),
    }


def message_html(record: Mapping[str, Any]) -> str | None:
    """The HTML part of a stored message, decoded: what the engagement simulation reads for links.

    Parsed with the compat32 policy: `message_view`'s default policy builds every header object,
    about 20 ms a message, which made one engagement batch of the demo's mail take minutes."""
    raw = record.get("raw")
    data = raw.encode() if raw is not None else base64.b64decode(record.get("raw_base64") or b"")
    parsed = message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.compat32)
    for part in parsed.walk():
        if part.get_content_type() == "text/html" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if payload is None:
                return None
            with contextlib.suppress(LookupError):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
            return payload.decode("utf-8", "replace")
    return None


class MailServer:
    """The aiosmtpd handler plus its listening socket, on the running event loop."""

    def __init__(self, settings: SmtpSettings, store: MailStore) -> None:
        self.settings = settings
        self.store = store
        self._initial_faults = settings.faults
        self._tls_context = settings.tls_context()
        self._server: asyncio.AbstractServer | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.address: tuple[str, int] | None = None
        self.configure_faults(settings.faults)

    # ---- faults -------------------------------------------------------------------------------

    def configure_faults(self, faults: SmtpFaults) -> None:
        """Apply new fault settings and restart the seeded stream."""
        self.faults = faults.validated()
        self._random = random.Random(faults.seed * 1_000_003 + zlib.crc32(b"smtp"))
        self._salt = f"{faults.seed}:smtp:".encode()
        self._permanent_threshold = int(faults.permanent_rate * 2**64)

    def restore_start_faults(self) -> None:
        self.configure_faults(self._initial_faults)

    def _refuses_permanently(self, address: str) -> bool:
        if not self._permanent_threshold:
            return False
        digest = blake2b(self._salt + address.lower().encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._permanent_threshold

    # ---- serving ------------------------------------------------------------------------------

    def _protocol(self) -> SMTP:
        self.store.count("connections")
        session = SMTP(
            self,
            hostname=SERVER_NAME,
            data_size_limit=self.settings.max_message_bytes,
            tls_context=self._tls_context,
            require_starttls=self.settings.require_starttls,
            # AUTH is enforced at MAIL FROM (handle_MAIL) rather than with auth_required, which
            # warns on every connection when TLS is not configured.
            authenticator=self._authenticate if self.settings.username else None,
            auth_require_tls=self._tls_context is not None,
            timeout=60,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    async def start(self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None) -> tuple[str, int]:
        """Listen on ``host:port`` (or an already bound ``sock``); returns the address actually bound."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(self._protocol, sock=sock)
        else:
            self._server = await loop.create_server(self._protocol, host, port, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        self.address = (bound[0], bound[1])
        return self.address

    async def stop(self) -> None:
        """Stop listening, close the open sessions and write the counters."""
        if self._server is not None:
            self._server.close()
            # Open sessions end too, as when a real server restarts: clients see the connection close.
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.close()
            await asyncio.sleep(0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            self._server = None
        self.store.save_counters()

    def view(self) -> dict[str, Any] | None:
        """Where it listens and how it is set up (never the password)."""
        if self.address is None:
            return None
        return {
            "host": self.address[0],
            "port": self.address[1],
            "starttls": self._tls_context is not None,
            "require_starttls": self.settings.require_starttls,
            "auth": self.settings.username is not None,
            "faults": self.faults.as_dict(),
        }

    # ---- aiosmtpd hooks -----------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected_user, expected_password = self.settings.username or "", self.settings.password or ""
        if isinstance(auth_data, LoginPassword):
            user_ok = hmac.compare_digest(auth_data.login, expected_user.encode())
            password_ok = hmac.compare_digest(auth_data.password, expected_password.encode())
            if user_ok and password_ok:
                return AuthResult(success=True, auth_data=expected_user)
        self.store.count("auth_failures")
        return AuthResult(success=False, handled=False)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.settings.username and not session.authenticated:
            return "530 5.7.0 Authentication required"
        self.store.count("transactions")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        faults = self.faults
        if self._refuses_permanently(address):
            self.store.count("rcpt", "550")
            return f"550 5.1.1 <{address}>: mailbox unavailable (sandbox fault injection)"
        if faults.transient_rate and self._random.random() < faults.transient_rate:
            self.store.count("rcpt", "451")
            return f"451 4.3.0 <{address}>: temporary failure, try again later (sandbox fault injection)"
        self.store.count("rcpt", "250")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        # Only the header block is parsed: the body can be megabytes.
        head = re.split(rb"\r?\n\r?\n", content[:65536], maxsplit=1)[0]
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
        queue_id = uuid.uuid4().hex[:16]
        record: dict[str, Any] = {
            "id": queue_id,
            "received_at": iso_now(),
            "date": _date(headers.get("Date")),  # the sender's clock, which a pinned as_of (the simulator) moves
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message_id": _message_id(headers.get("Message-ID")),
            "attiva_message_id": _header_text(headers.get("X-Attiva-Message-Id")),
            "attiva_template": _header_text(headers.get("X-Attiva-Template")),
            "subject": _header_text(headers.get("Subject")),
            "size": len(content),
        }
        try:
            record["raw"] = content.decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(content).decode("ascii")
        self.store.append(record)
        self.store.count("messages")
        self.store.count("bytes", by=len(content))
        return f"250 2.0.0 Ok: queued as {queue_id}"


def _date(value: str | None) -> str | None:
    """The Date header as ISO 8601 UTC, or None when missing or unreadable."""
    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def running_smtp(
    state_dir: Path | str, port: int = 0, *, host: str = "127.0.0.1", **options: Any
) -> Iterator[tuple[str, int]]:
    """Run the sandbox mail server in a background thread; yields ``(host, port)``, stops it on exit.

    ``port=0`` picks a free port. ``options`` are :class:`SmtpSettings` fields (``tls_cert``,
    ``tls_key``, ``require_starttls``, ``username``, ``password``, ``max_message_bytes``) and
    fault fields (``transient_rate``, ``permanent_rate``, ``latency_ms``, ``seed``). Messages
    go to ``<state_dir>/smtp/``.
    """
    settings = SmtpSettings.build(options)
    store = MailStore(Path(state_dir) / "smtp")
    server = MailServer(settings, store)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start(host, port))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="attiva-sandbox-smtp", daemon=True)
    thread.start()
    started.wait(timeout=15)
    if failure:
        thread.join(timeout=5)
        store.close()
        raise failure[0]
    if server.address is None:
        raise TimeoutError("the sandbox SMTP server did not start within 15 s")
    try:
        yield server.address
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        store.close()
