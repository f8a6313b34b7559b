"""What the event sensor sees: the event files of the landing folder, by size and modification time,
against its cursor (the same cursor format and run keys as landing_watch, over `events/` only).

No settling wait for the events collector's files (`events/api/`, written by `attiva serve`): each
is renamed into place once written and fsync'ed, so it is complete the moment it appears, and the
wait would be most of the event path's latency. Event files dropped by anything else (an export,
a copy) still settle like every landing file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from activations.ingest.contract import SOURCES
from activations.ingest.landing import FORMAT_BY_SUFFIX, scan
from orchestration.lib.landing_watch import SETTLE_SECONDS, LandingChanges, compare, mtime_us

EVENTS_FOLDER = next(s.folder for s in SOURCES if s.name == "events")
COLLECTOR_FOLDER = f"{EVENTS_FOLDER}/api/"  # activations/serve/events.py writes here, atomically


def is_event_file(name: str) -> bool:
    """A landing file (path relative to the landing root) of the events source."""
    return name.startswith(f"{EVENTS_FOLDER}/")


def look(landing: Path, cursor: str | None, now: datetime, settle_seconds: float = SETTLE_SECONDS) -> LandingChanges:
    """New or changed event files since the cursor; only `events/` is walked."""
    folder = landing / EVENTS_FOLDER
    files = ((f"{EVENTS_FOLDER}/{f.name}", f.size_bytes, mtime_us(f.modified_at))
             for f in (scan(folder) if folder.is_dir() else [])
             if any(f.path.name.lower().endswith(suffix) for suffix in FORMAT_BY_SUFFIX))  # else ingestion skips it
    return compare(files, cursor, now, settle_seconds, complete_at_once=lambda name: name.startswith(COLLECTOR_FOLDER))
