"""The in-app inbox: the messages an `in_app` channel made available, which `attiva serve` shows to their
customer (`GET /v1/messages/...`).

One SQLite file beside the serving store (`<serving>/inbox.sqlite`), in WAL mode: the messaging pass writes it
(one transaction per batch, so a pass killed mid-write leaves each batch wholly in or wholly out), and the
server reads it per request, a primary-key lookup by customer, without blocking the writer. It is not part of
the snapshot: a message is shown as soon as the pass wrote it, not after the next snapshot.

A row is written once: writing a message id already there changes nothing (a resend after a crash, or a
message the visitor has dismissed, stays as it is). That is what makes the channel exactly-once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from activations import settings

INBOX_FILE = "inbox.sqlite"
MAX_SHOWN = 3  # messages an answer carries at most, highest priority first

_SCHEMA = """
create table if not exists messages (
    message_id text primary key,
    customer_id text not null,
    campaign text not null,
    step integer not null,
    title text not null,
    body text not null,
    link text,
    priority integer not null,
    available_at text not null,
    expires_at text not null,
    dismissed_at text
);
create index if not exists messages_by_customer on messages (customer_id, priority desc, available_at);
"""


def default_path() -> Path:
    """Where the inbox lives: beside the serving store's snapshots (ATTIVA_SERVING)."""
    return settings.serving_dir() / INBOX_FILE


def stamp(moment: datetime) -> str:
    """A time as the inbox keeps it: ISO 8601 UTC to the second, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class InAppMessage:
    """One message as the storefront shows it; `message_id` is the ledger's, the id its events carry."""

    message_id: str
    customer_id: str
    campaign: str
    step: int
    title: str
    body: str
    link: str | None
    priority: int
    available_at: str
    expires_at: str

    def as_json(self) -> dict:
        return {"message_id": self.message_id, "campaign": self.campaign, "step": self.step, "title": self.title,
                "body": self.body, "link": self.link, "priority": self.priority,
                "available_at": self.available_at, "expires_at": self.expires_at}


_COLUMNS = ", ".join(InAppMessage.__dataclass_fields__)


class Inbox:
    """The inbox file; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True):
        self.path = Path(path) if path is not None else default_path()
        self.create = create  # False (the server): no file yet means no message yet
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._con is None:
            if not self.create and not self.path.exists():
                return None  # nothing sent in-app yet
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
            con.execute("pragma journal_mode=wal")
            con.execute("pragma synchronous=normal")  # survives a killed process; a power cut may lose the last
            con.execute("pragma busy_timeout=5000")
            con.executescript(_SCHEMA)
            self._con = con
        return self._con

    def put(self, messages: Iterable[InAppMessage]) -> int:
        """Make `messages` available, all in one transaction; those already in the inbox are left as they are.
        How many were new."""
        rows = [tuple(getattr(m, f) for f in InAppMessage.__dataclass_fields__) for m in messages]
        with self._lock:
            con = self._connection()
            con.execute("begin immediate")
            try:
                before = con.total_changes
                con.executemany(f"insert into messages ({_COLUMNS}) values ({', '.join('?' * 10)}) "
                                "on conflict (message_id) do nothing", rows)
                new = con.total_changes - before
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        return new

    def has(self, message_ids: Iterable[str]) -> set[str]:
        """Which of `message_ids` are in the inbox."""
        wanted = list(message_ids)
        with self._lock:
            con = self._connection()
            if con is None or not wanted:
                return set()
            marks = ", ".join("?" * len(wanted))
            return {r[0] for r in con.execute(f"select message_id from messages where message_id in ({marks})",
                                               wanted)}

    def due(self, customer_id: str, now: datetime, limit: int = MAX_SHOWN) -> list[InAppMessage]:
        """The customer's messages to show at `now`: available, not expired, not dismissed; highest priority
        first, then the newest."""
        at = stamp(now)
        with self._lock:
            con = self._connection()
            if con is None:
                return []
            rows = con.execute(f"""select {_COLUMNS} from messages
                                   where customer_id = ? and dismissed_at is null and available_at <= ?
                                     and expires_at > ?
                                   order by priority desc, available_at desc, message_id limit ?""",
                               [customer_id, at, at, limit]).fetchall()
        return [InAppMessage(*row) for row in rows]

    def dismiss(self, message_ids: Iterable[str], now: datetime, *, customer_id: str | None = None) -> int:
        """Mark messages dismissed (never shown again), only `customer_id`'s when given; how many were not
        already."""
        wanted = [m for m in message_ids if m]
        if not wanted:
            return 0
        with self._lock:
            con = self._connection()
            if con is None:
                return 0
            before = con.total_changes
            con.executemany("update messages set dismissed_at = ? where message_id = ? and dismissed_at is null "
                            "and customer_id = coalesce(?, customer_id)", [[stamp(now), m, customer_id] for m in wanted])
            return con.total_changes - before

    def forget(self, customer_ids: Iterable[str]) -> int:
        """Delete every message of these customers (`attiva forget`); how many."""
        wanted = [c for c in customer_ids if c]
        with self._lock:
            con = self._connection()
            if con is None or not wanted:
                return 0
            before = con.total_changes
            con.executemany("delete from messages where customer_id = ?", [[c] for c in wanted])
            return con.total_changes - before

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
