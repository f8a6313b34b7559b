"""The audiences page: every `audiences.aud_*` table with its size now, the syncs declared on it
(destination, mode, consent) with each one's last run, and its size over time: at each build (the
row count its quality gate recorded, synced or not) and at each sync run."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from activations import warehouse
from activations.syncs import last_runs

SIZE_HISTORY = 60  # sizes shown per audience, newest first
BUILD = "build"  # what measured a size: a build's quality gate (else the sync's name)


@dataclass
class DeclaredSync:
    name: str
    destination: str
    mode: str
    consent: str | None
    last_run: dict[str, Any] | None = None  # activations.syncs.last_runs' row, None if it never ran
    broken: str | None = None  # why the declaration cannot run


@dataclass
class AudienceSummary:
    name: str
    size: int
    description: str = ""
    syncs: list[DeclaredSync] = field(default_factory=list)
    # (when, what measured it, rows): the size at each build's quality gate (BUILD) and each time a sync read it.
    sizes: list[tuple[datetime, str, int]] = field(default_factory=list)

    def daily_sizes(self) -> list[tuple[date, float]]:
        """The size each day it was measured (the day's last measure), for the chart."""
        by_day: dict[date, tuple[datetime, int]] = {}
        for started, _, rows in self.sizes:
            day = started.date()
            if day not in by_day or started > by_day[day][0]:
                by_day[day] = (started, rows)
        return sorted((day, float(rows)) for day, (_, rows) in by_day.items())


@dataclass(frozen=True)
class Declared:
    """What the dbt manifest declares: each audience's description and its syncs (`problem` when the
    manifest or destinations.yml could not be read: the page still shows the tables)."""

    descriptions: dict[str, str]
    syncs: dict[str, list[DeclaredSync]]
    problem: str | None = None


def declared(manifest_path: Path | None = None, destinations_path: Path | None = None) -> Declared:
    """The audiences' descriptions and declared syncs, broken ones with their reason."""
    from activations.destinations.config import read_destinations
    from activations.manifest import audiences, declared_syncs, load_manifest

    try:
        manifest = load_manifest(manifest_path)
        declarations = declared_syncs(manifest, read_destinations(destinations_path))
    except (OSError, ValueError) as exc:
        return Declared({}, {}, f"the declared syncs could not be read: {exc}")
    by_audience: dict[str, list[DeclaredSync]] = defaultdict(list)
    for sync in declarations.syncs:
        by_audience[sync.audience.name].append(DeclaredSync(sync.name, sync.destination, sync.mode, sync.consent))
    for broken in declarations.broken:
        by_audience[broken.audience].append(DeclaredSync(broken.name, broken.destination or "?", "", None,
                                                         broken=broken.reason))
    return Declared({a.name: a.description for a in audiences(manifest)}, dict(by_audience))


def audience_tables(con, with_column: str | None = None) -> list[str]:
    """The `aud_*` tables and views the last build left in schema `audiences` (those with a column
    `with_column`, if given)."""
    if with_column:
        rows = con.execute("select distinct table_name from information_schema.columns where table_schema = "
                           "'audiences' and table_name like 'aud\\_%' escape '\\' and column_name = ? "
                           "order by table_name", [with_column]).fetchall()
    else:
        rows = con.execute("select table_name from information_schema.tables where table_schema = 'audiences' "
                           "and table_name like 'aud\\_%' escape '\\' order by table_name").fetchall()
    return [r[0] for r in rows]


def summaries(con, declared_now: Declared, only: str | None = None) -> list[AudienceSummary]:
    """Each audience (or only the one named) with its size, syncs and recent sizes."""
    names = [n for n in audience_tables(con) if only is None or n == only]
    if not names:
        return []
    sizes = con.execute(" union all ".join(
        f"select {literal(name)} as audience, count(*) from {relation(name)}" for name in names)).fetchall()
    runs = last_runs(con)
    history = _size_history(con)
    found = []
    for name, size in sorted(sizes):
        syncs = [DeclaredSync(s.name, s.destination, s.mode, s.consent, runs.get(s.name), s.broken)
                 for s in declared_now.syncs.get(name, [])]
        sync_names = {s.name for s in syncs}
        found.append(AudienceSummary(name, size, declared_now.descriptions.get(name, ""), syncs,
                                     [(at, what, rows) for at, what, rows, audience in history
                                      if what in sync_names or (what == BUILD and audience == name)][:SIZE_HISTORY]))
    return found


def _size_history(con) -> list[tuple[datetime, str, int, str | None]]:
    """(when, sync name or BUILD, rows, audience for a build's measure), newest first."""
    parts = []
    if warehouse.has_table(con, "activation", "sync_runs"):
        parts.append("select started_at, sync_name, audience_rows, cast(null as varchar) from activation.sync_runs "
                     "where audience_rows is not null")
    if warehouse.has_table(con, "activation", "quality_gate_counts"):  # orchestration's gates (quality_gates.record)
        parts.append(f"select checked_at, {literal(BUILD)}, row_count, substr(asset, length('audiences/') + 1) "
                     "from activation.quality_gate_counts where asset like 'audiences/aud%'")
    if not parts:
        return []
    return [tuple(r) for r in con.execute(" union all ".join(parts) + " order by 1 desc").fetchall()]


def relation(name: str) -> str:
    """The audience table `name` quoted for SQL (names come from the catalog, quoted all the same)."""
    return 'audiences."' + name.replace('"', '""') + '"'


def literal(name: str) -> str:
    """`name` as an SQL string literal."""
    return "'" + name.replace("'", "''") + "'"
