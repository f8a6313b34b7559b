"""What the landing sensor sees: loadable files by size and modification time, compared with
what it saw before (its cursor). Only names and stat() are read, never contents, so a tick
stays cheap on a large folder; ingestion does the hashing (and skips touched-but-same files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from activations.ingest.landing import scan

# A file modified this recently may still be being written (an SFTP upload, a slow copy):
# wait for the next tick rather than ingest half a file.
SETTLE_SECONDS = 10.0

Stat = tuple[int, int]  # size in bytes, mtime in microseconds
_EPOCH = datetime(1970, 1, 1)  # LandingFile.modified_at is naive UTC


@dataclass(frozen=True)
class LandingChanges:
    changed: list[str]  # new or changed files, ready to ingest
    settling: list[str]  # modified too recently: looked at again next tick
    cursor: str  # what to remember: every settled file's stat

    def run_key(self) -> str:
        """The same file set (names, sizes, mtimes) always gets the same run key."""
        seen = json.loads(self.cursor)
        digest = hashlib.sha256(json.dumps([[n, seen[n]] for n in self.changed]).encode()).hexdigest()
        return f"landing-{digest[:16]}"


def look(landing: Path, cursor: str | None, now: datetime, settle_seconds: float = SETTLE_SECONDS) -> LandingChanges:
    """Compare the landing folder with the cursor of the previous tick."""
    # Not loadable (wrong folder or type): ingestion would only skip it.
    files = ((f.name, f.size_bytes, mtime_us(f.modified_at)) for f in scan(landing) if f.skip_reason is None)
    return compare(files, cursor, now, settle_seconds)


def mtime_us(modified_at: datetime) -> int:
    return (modified_at - _EPOCH) // timedelta(microseconds=1)


def compare(files: Iterable[tuple[str, int, int]], cursor: str | None, now: datetime, settle_seconds: float,
            complete_at_once: Callable[[str], bool] = lambda name: False) -> LandingChanges:
    """(name, size, mtime in µs) of the files seen now against the cursor; a file modified within
    `settle_seconds` waits, unless `complete_at_once(name)` (written whole, then renamed in)."""
    seen: dict[str, Stat] = {n: (s[0], s[1]) for n, s in json.loads(cursor).items()} if cursor else {}
    current: dict[str, Stat] = {}
    settling: list[str] = []
    horizon = now.timestamp() - settle_seconds
    for name, size, mtime in files:
        if mtime / 1_000_000 > horizon and not complete_at_once(name):
            settling.append(name)
            continue
        current[name] = (size, mtime)
    changed = [n for n, stat in current.items() if seen.get(n) != stat]
    # A settling file keeps its old stat, so it still counts as changed once it settles.
    remembered = {**{n: seen[n] for n in settling if n in seen}, **current}
    return LandingChanges(changed=sorted(changed), settling=sorted(settling),
                          cursor=json.dumps(remembered, sort_keys=True, separators=(",", ":")))


def already_loaded(warehouse_file: Path, names: list[str], cursor: str) -> set[str]:
    """Of `names` (as the cursor has their stat), those the warehouse's ingestion ledger
    (raw.landing_files) holds as loaded with that very size and mtime: ingestion would skip them,
    so they are no reason for a run (the sensor's first tick after `make demo` loaded them all).
    Empty when the warehouse cannot be read right now (missing, or a run holds it): then every
    file counts as new, as it would without the ledger."""
    import duckdb

    from activations.ingest import ledger

    if not names or not warehouse_file.exists():
        return set()
    try:  # never wait in line: a sensor tick must stay short
        with duckdb.connect(str(warehouse_file), read_only=True) as con:
            entries = ledger.read(con)
    except duckdb.Error:
        return set()
    stats = json.loads(cursor)
    return {name for name in names if name in stats
            and ledger.holds_version(entries.get(name), stats[name][0], _EPOCH + timedelta(microseconds=stats[name][1]))}
