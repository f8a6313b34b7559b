"""What the event sensor sees: the event files of the landing folder, by size and modification time,
against its cursor (the same cursor format and run keys as landing_watch, over `events/` only).

No settling wait for the events collector's files (`events/api/`, written by `attiva serve`): each
is renamed into place once written and fsync'ed, so it is complete the moment it appears, and the
wait would be most of the event path's latency. Event files dropped by anything else (an export,
a copy) still settle like every landing file.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from activations.ingest.contract import SOURCES
from activations.ingest.landing import FORMAT_BY_SUFFIX, scan
from orchestration.lib.landing_watch import SETTLE_SECONDS, LandingChanges

EVENTS_FOLDER = next(s.folder for s in SOURCES if s.name == "events")
COLLECTOR_FOLDER = f"{EVENTS_FOLDER}/api/"  # activations/serve/events.py writes here, atomically
_EPOCH = datetime(1970, 1, 1)


def is_event_file(name: str) -> bool:
    """A landing file (path relative to the landing root) of the events source."""
    return name.startswith(f"{EVENTS_FOLDER}/")


def look(landing: Path, cursor: str | None, now: datetime, settle_seconds: float = SETTLE_SECONDS) -> LandingChanges:
    """New or changed event files since the cursor; only `events/` is walked."""
    seen = {n: (s[0], s[1]) for n, s in json.loads(cursor).items()} if cursor else {}
    current: dict[str, tuple[int, int]] = {}
    settling: list[str] = []
    horizon = now.timestamp() - settle_seconds
    folder = landing / EVENTS_FOLDER
    for file in scan(folder) if folder.is_dir() else []:
        name = f"{EVENTS_FOLDER}/{file.name}"
        if not any(file.path.name.lower().endswith(suffix) for suffix in FORMAT_BY_SUFFIX):
            continue  # ingestion would skip it
        mtime_us = (file.modified_at - _EPOCH) // timedelta(microseconds=1)
        if not name.startswith(COLLECTOR_FOLDER) and mtime_us / 1_000_000 > horizon:
            settling.append(name)
            continue
        current[name] = (file.size_bytes, mtime_us)
    changed = [n for n, stat in current.items() if seen.get(n) != stat]
    remembered = {**{n: seen[n] for n in settling if n in seen}, **current}
    return LandingChanges(changed=sorted(changed), settling=sorted(settling),
                          cursor=json.dumps(remembered, sort_keys=True, separators=(",", ":")))
