"""The send journal: each message's in-flight state, written before and after its channel call.

The ledger lives in the warehouse, where a write costs milliseconds (DuckDB commits a few
hundred statements a second), too slow to record every message on its own at hundreds of
messages a second. So a pass claims a batch in the ledger in one statement (`queued`) and
records each message here, in a SQLite file beside the warehouse (WAL mode: a commit is tens
of microseconds and survives a killed process):

- `queued`   the batch was claimed; this message has not left;
- `sending`  committed right before the channel call: from here on it may have gone out;
- `sent` / `failed` / `planned` / `unknown`: the channel's answer, committed right after it.

Outcomes are folded into the ledger a hundred at a time and the journal is emptied when a
batch is done. After a kill -9 the next pass reads it (recovery.py): a message still
`queued` never left and is sent again, one with an outcome gets it, and only those `sending`
(at most the channel's concurrency) have an unknown outcome.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

SUFFIX = ".send-journal.sqlite"
COLUMNS = ("campaign", "trigger_key", "step", "state", "reason", "provider_id", "at")


def path_for(con) -> Path | None:
    """The journal beside the DuckDB warehouse `con` is open on; None for an in-memory warehouse."""
    found = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    return Path(found[0] + SUFFIX) if found and found[0] else None


class SendJournal:
    """One row per message of the batch being sent; thread-safe (one SQLite connection behind a lock)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            # WAL with synchronous=NORMAL: a commit survives the process being killed (not a power cut).
            self._db.execute("pragma journal_mode=wal")
            self._db.execute("pragma synchronous=normal")
        self._db.execute("""create table if not exists journal (
            campaign text not null, trigger_key text not null, step integer not null, state text not null,
            reason text, provider_id text, at text, primary key (campaign, trigger_key, step))""")
        self._lock = threading.Lock()

    def queue(self, keys: Iterable[tuple[str, str, int]]) -> None:
        """The batch, claimed: none of it has left yet (one transaction)."""
        with self._lock:
            self._db.execute("begin")
            self._db.executemany("insert or replace into journal (campaign, trigger_key, step, state) "
                                 "values (?, ?, ?, 'queued')", list(keys))
            self._db.execute("commit")

    def sending(self, key: tuple[str, str, int], at: datetime) -> None:
        """Committed before the channel is called: the message may leave from now on."""
        self._set(key, "sending", None, None, at)

    def outcome(self, key: tuple[str, str, int], state: str, reason: str | None, provider_id: str | None,
                at: datetime) -> None:
        """The channel's answer, committed as soon as it is known."""
        self._set(key, state, reason, provider_id, at)

    def _set(self, key, state, reason, provider_id, at: datetime) -> None:
        with self._lock:
            self._db.execute("update journal set state = ?, reason = ?, provider_id = ?, at = ? "
                             "where campaign = ? and trigger_key = ? and step = ?",
                             (state, reason, provider_id, at.isoformat(), *key))

    def entries(self) -> list[dict[str, Any]]:
        """Every message of the last batch, with its last recorded state."""
        with self._lock:
            rows = self._db.execute(f"select {', '.join(COLUMNS)} from journal").fetchall()
        return [{**dict(zip(COLUMNS, row, strict=True)),
                 "at": datetime.fromisoformat(row[-1]) if row[-1] else None} for row in rows]

    def clear(self) -> None:
        """Forget the batch: its every outcome is in the ledger now."""
        with self._lock:
            self._db.execute("delete from journal")

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def exists(path: Path | None) -> bool:
    """Whether a journal was ever written beside this warehouse."""
    return path is not None and path.exists()
