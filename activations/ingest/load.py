"""Load the landing folder into the raw tables: new and changed files only, one transaction per file.

For each file: skip it if the ledger says this version is loaded (same size and mtime,
else same sha256); otherwise stage it (`readers` + `validate`; a CSV file whose quoted
value ran away over whole records is read again without its stray lines, see `quotes`) and
number its lines (`lines`), then in one transaction delete the rows of its previous version, insert the
good rows into `raw.<source>` and the problems into `raw.quarantine`, and record it in
the ledger. A file that can't be read is recorded as failed and the others go on.

Staging the next file overlaps the insert of the current one: a worker thread hashes and
stages on its own cursor into a schema per file of an in-memory database, while the main
thread inserts. Writing the warehouse file (compression, I/O) leaves cores idle that the
next file's parsing can use: about 25% off the wall time on 2 cores.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from activations.ingest import groups, ledger, lines, quotes, readers, tables, validate
from activations.ingest.contract import SOURCES
from activations.ingest.landing import Fingerprint, LandingFile, blank_lines, fingerprint, scan
from activations.ingest.report import FAILED, LOADED, REPLACED, SKIPPED, UNCHANGED, FileResult, IngestReport, Problem
from activations.warehouse import connect

STAGING = "ingest_staging"  # in-memory database attached for the load; one schema per file
_PROBLEMS_SHOWN = 5
# SQL that doesn't parse or bind is a bug here, not a bad file: let it stop the load loudly.
_OUR_MISTAKES = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


@dataclass(frozen=True)
class Staged:
    """A file hashed and, unless unchanged or unreadable, read and checked into its staging schema."""

    fingerprint: Fingerprint | None
    unchanged: bool = False
    error: str | None = None
    prefix: str = ""  # `ingest_staging.fN.`: where its tables are
    records: readers.Records | None = None
    line_map: lines.LineMap | None = None
    good: int = 0
    bad: int = 0
    rejected: int = 0
    stray_quotes: tuple[quotes.StrayQuote, ...] = ()  # lines cut out of a runaway quoted value, quarantined as such

    @property
    def table(self) -> str:
        return f"{self.prefix}stage"


def load_landing(landing: Path, warehouse: Path | None = None, sources: Collection[str] | None = None) -> IngestReport:
    """Load every new or changed file under `landing` into the raw tables of `warehouse` (default ATTIVA_WAREHOUSE);
    with `sources`, only the files of those sources (the engagement feedback step loads its own)."""
    started = time.monotonic()
    landing = Path(landing)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist")
    files = [f for f in scan(landing) if sources is None or (f.source is not None and f.source.name in sources)]
    with connect(warehouse) as con:
        _prepare(con)
        known = ledger.read(con)
        report = IngestReport(ingested_at=_load_time(con))
        to_stage = [f for f in files if f.skip_reason is None and not ledger.holds_version(known.get(f.name), f.size_bytes, f.modified_at)]
        units = groups.plan(to_stage, replacing=set(known))
        with _Stager(con, units, known) as stager:
            for file in files:
                staged = stager.take(file)
                unit = stager.unit_of(file)
                if len(unit) == 1:
                    report.files.append(_ingest(con, file, known.get(file.name), staged, report.ingested_at))
                elif file is unit[0]:
                    report.files.extend(_ingest_group(con, unit, staged, report.ingested_at))
    report.seconds = time.monotonic() - started
    return report


class _Stager:
    """Stages units (a file, or a group of small files: groups.py) on a worker thread and its own cursor,
    one unit ahead of the one being inserted."""

    def __init__(self, con: duckdb.DuckDBPyConnection, units: list[list[LandingFile]], known: dict[str, ledger.Entry]):
        self._units, self._known = units, known
        self._position = {f.name: i for i, unit in enumerate(units) for f in unit}
        self._futures: list[Future] = []
        self._cursor = con.cursor()
        self._cursor.execute("set TimeZone = 'UTC'")
        self._cursor.execute("set preserve_insertion_order = true")
        self._pool = ThreadPoolExecutor(max_workers=1)

    def unit_of(self, file: LandingFile) -> list[LandingFile]:
        i = self._position.get(file.name)
        return [file] if i is None else self._units[i]

    def take(self, file: LandingFile) -> Future | None:
        """The staging of `file`'s unit, or None when it needs none (skipped, or unchanged by size and mtime)."""
        i = self._position.get(file.name)
        if i is None:
            return None
        # Submitting only up to the next unit bounds memory to two staged units.
        while len(self._futures) <= min(i + 1, len(self._units) - 1):
            n = len(self._futures)
            unit, prefix = self._units[n], f"{STAGING}.f{n}."
            if len(unit) == 1:
                self._futures.append(self._pool.submit(_stage, self._cursor, unit[0], self._known.get(unit[0].name),
                                                       prefix))
            else:
                self._futures.append(self._pool.submit(_stage_group, self._cursor, unit, prefix))
        return self._futures[i]

    def __enter__(self) -> _Stager:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)
        self._cursor.close()


def _prepare(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("set TimeZone = 'UTC'")
    con.execute("set preserve_insertion_order = true")  # staged row order = file order: how lines are numbered
    con.execute(f"attach if not exists ':memory:' as {STAGING}")
    tables.ensure_schema(con)
    ledger.ensure(con)
    for source in SOURCES:
        tables.ensure_raw_table(con, source)


def _load_time(con: duckdb.DuckDBPyConnection) -> datetime:
    """Now, in UTC; always later than the previous load, which incremental models select after."""
    now = datetime.now(UTC).replace(tzinfo=None)
    previous = ledger.last_ingested_at(con)
    return max(now, previous + timedelta(microseconds=1)) if previous else now


def _stage(con: duckdb.DuckDBPyConnection, file: LandingFile, entry: ledger.Entry | None, prefix: str) -> Staged:
    """Hash the file and, if this version isn't loaded yet, read and check it into tables named `{prefix}...`.

    Runs on the worker thread, outside any transaction: row ids of the staged table are then file positions.
    """
    assert file.source is not None
    try:
        fp = fingerprint(file)
    except (OSError, EOFError, zlib.error) as error:
        return Staged(None, error=f"could not read the file ({error})")
    if entry is not None and entry.status == ledger.LOADED and entry.sha256 == fp.sha256:
        return Staged(fp, unchanged=True)
    con.execute(f"create schema {prefix.rstrip('.')}")
    copy = None
    try:
        records, staged, rejected, rejected_lines, multiline_rejects = _read(con, file, prefix)
        stray: list[quotes.StrayQuote] = []
        if (
            fp.quotes
            and records.width
            and (multiline_rejects or _lines_unaccounted(fp, records, staged, rejected_lines) > 0)
        ):
            stray = quotes.runaway_quote_lines(file, records.width)
        if stray:
            # Read a copy without the stray lines: every line between them is then a record of its own.
            copy = quotes.without_lines(file, {s.line for s in stray})
            file = replace(file, path=copy)
            fp = replace(fingerprint(file), sha256=fp.sha256)
            con.execute(f"drop schema {prefix.rstrip('.')} cascade")
            con.execute(f"create schema {prefix.rstrip('.')}")
            records, staged, rejected, rejected_lines, _ = _read(con, file, prefix)
        line_map = _line_map(con, prefix, file, fp, records, staged, rejected_lines)
        good, bad = con.execute(
            f"select count(*) filter (where _ok), count(*) filter (where not _ok) from {prefix}stage"
        ).fetchone()
    except readers.Unreadable as error:
        return Staged(fp, error=str(error), prefix=prefix)
    except _OUR_MISTAKES:
        raise
    except (duckdb.Error, OSError, EOFError, zlib.error) as error:  # EOFError, zlib.error: a gzip cut short
        return Staged(fp, error=readers.error_summary(error), prefix=prefix)
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)
    return Staged(
        fp,
        prefix=prefix,
        records=records,
        line_map=line_map,
        good=good,
        bad=bad,
        rejected=rejected,
        stray_quotes=tuple(stray),
    )


def _read(
    con: duckdb.DuckDBPyConnection, file: LandingFile, prefix: str
) -> tuple[readers.Records, int, int, int, bool]:
    """Read and check the file into `{prefix}stage`, its unsplittable lines into `{prefix}rejected`.

    Returns the records, how many were staged, how many the reader rejected, how many lines those
    span, and whether any spans several lines."""
    assert file.source is not None
    records = readers.open_records(con, file, file.source)
    staged = validate.stage(con, file.source, records, f"{prefix}stage")
    if (wrong_format := validate.not_this_format(con, records, f"{prefix}stage")) is not None:
        raise readers.Unreadable(wrong_format)
    if not records.rejected:
        return records, staged, 0, 0, False
    con.execute(f"create table {prefix}rejected as {records.rejected}")
    rejected, rejected_lines = con.execute(
        f"select count(*), count(*) + coalesce(sum(nl), 0) from ({_rejected_gaps(prefix)})"
    ).fetchone()
    return records, staged, rejected, rejected_lines, rejected_lines > rejected


def _rejected_gaps(prefix: str) -> str:
    return f"select d, length(record) - length(replace(record, chr(10), '')) as nl from {prefix}rejected"


def _lines_unaccounted(fp: Fingerprint, records: readers.Records, staged: int, rejected_lines: int) -> int:
    """Lines of the file that are neither the header, a record's first line nor a rejected line:
    line breaks inside values and blank lines (or lines a runaway quote swallowed)."""
    return fp.lines - fp.trailing_blank_lines - (records.first_line + staged + rejected_lines)


def _line_map(
    con: duckdb.DuckDBPyConnection,
    prefix: str,
    file: LandingFile,
    fp: Fingerprint,
    records: readers.Records,
    staged: int,
    rejected_lines: int,
) -> lines.LineMap:
    """Find what moves records off `position + header`: lines the reader rejected, and in a CSV file, line
    breaks inside values and blank lines, looked for only when the file has more lines than that explains."""
    multiline = None
    blanks: list[int] = []
    if records.newlines is not None:
        last_line = fp.lines - fp.trailing_blank_lines
        extra = _lines_unaccounted(fp, records, staged, rejected_lines)
        if extra > 0:
            con.execute(f"create table {prefix}newlines as {records.newlines}")
            multiline = f"select rowid as pos, nl from {prefix}newlines"
            inside_values = con.execute(f"select coalesce(sum(nl), 0) from {prefix}newlines").fetchone()[0]
            if extra > inside_values:
                blanks = [n for n in blank_lines(file) if n <= last_line]
    return lines.build(
        con,
        prefix,
        records=staged,
        first_line=records.first_line,
        gaps=_rejected_gaps(prefix) if records.rejected else None,
        multiline=multiline,
        blank_lines=blanks,
    )


def _ingest(
    con: duckdb.DuckDBPyConnection,
    file: LandingFile,
    entry: ledger.Entry | None,
    pending: Future[Staged] | None,
    ingested_at: datetime,
) -> FileResult:
    if (reason := file.skip_reason) is not None:
        if entry is None or entry.status != ledger.SKIPPED or entry.modified_at != file.modified_at:
            ledger.write(con, _entry(file, None, ledger.SKIPPED, ingested_at, error=reason))
        return _result(file, SKIPPED, error=reason)
    if pending is None:
        return _result(file, UNCHANGED)
    staged = pending.result()
    try:
        if staged.unchanged:
            # Touched but not changed: remember the new mtime so the next run skips it without hashing.
            assert entry is not None
            ledger.write(con, replace(entry, size_bytes=file.size_bytes, modified_at=file.modified_at))
            return _result(file, UNCHANGED)
        if staged.error is not None:
            ledger.write(con, _entry(file, staged.fingerprint, ledger.FAILED, ingested_at, error=staged.error))
            return _result(file, FAILED, error=staged.error)
        loaded, quarantined, problems = _insert(con, file, staged, entry is not None, ingested_at)
    finally:
        if staged.prefix:
            con.execute(f"drop schema if exists {staged.prefix.rstrip('.')} cascade")
    status = REPLACED if entry is not None and entry.status == ledger.LOADED else LOADED
    return _result(file, status, loaded, quarantined, problems=problems)


def _result(file: LandingFile, status: str, *counts: int, **details: object) -> FileResult:
    source = file.source.name if file.source else None
    return FileResult(file.name, source, file.format, status, *counts, **details)  # type: ignore[arg-type]


def _entry(
    file: LandingFile,
    fp: Fingerprint | None,
    status: str,
    at: datetime,
    loaded: int = 0,
    quarantined: int = 0,
    error: str | None = None,
) -> ledger.Entry:
    return ledger.Entry(
        file=file.name,
        source=file.source.name if file.source else None,
        format=file.format,
        size_bytes=file.size_bytes,
        modified_at=file.modified_at,
        sha256=fp.sha256 if fp else None,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        status=status,
        error=error,
        ingested_at=at,
    )


def _insert(
    con: duckdb.DuckDBPyConnection, file: LandingFile, staged: Staged, replacing: bool, at: datetime
) -> tuple[int, int, tuple[Problem, ...]]:
    """Swap the file's rows for its staged ones in one transaction; returns rows loaded, quarantined, first problems."""
    assert file.source is not None and staged.records is not None and staged.line_map is not None
    source, records, line_map = file.source, staged.records, staged.line_map
    con.begin()
    try:
        if replacing:
            con.execute(f"delete from {tables.raw_table(source)} where _file = ?", [file.name])
            con.execute(f"delete from {tables.QUARANTINE} where file = ?", [file.name])

        columns = ", ".join(f'"{c.name}"' for c in source.columns)
        (loaded,) = con.execute(
            f"""
            insert into {tables.raw_table(source)} ({columns}, _file, _line, _ingested_at)
            select {columns}, ?, {line_map.line("s.__pos")}, ?
            from (select rowid as __pos, * from {staged.table} where _ok) as s
            {line_map.join("s.__pos")}
            """,
            [file.name, at],
        ).fetchone()
        if loaded != staged.good:
            raise RuntimeError(f"{file.name}: staged {staged.good} good rows but inserted {loaded}")
        structural = (
            f"""
            union all
            select ?, ?, g.line, NULL, r.reason, r.record, ?
            from {staged.prefix}rejected as r join {line_map.gap_lines} as g using (d)
            """
            if records.rejected
            else ""
        )
        con.execute(
            f"""
            insert into {tables.QUARANTINE} (file, source, line, field, reason, record, ingested_at)
            select ?, ?, {line_map.line("p.pos")}, p.field, p.reason, p.record, ?
            from ({validate.problems(source, records, staged.table)}) as p
            {line_map.join("p.pos")}
            {structural}
            """,
            [file.name, source.name, at] + ([file.name, source.name, at] if records.rejected else []),
        )
        if staged.stray_quotes:
            con.executemany(
                f"insert into {tables.QUARANTINE} (file, source, line, field, reason, record, ingested_at) "
                "values (?, ?, ?, NULL, ?, ?, ?)",
                [[file.name, source.name, s.line, s.reason, s.text, at] for s in staged.stray_quotes],
            )
        problems = tuple(
            Problem(file.name, line, reason)
            for line, reason in con.execute(
                f"select line, reason from {tables.QUARANTINE} where file = ? order by line, field limit ?",
                [file.name, _PROBLEMS_SHOWN],
            ).fetchall()
        )
        quarantined = staged.bad + staged.rejected + len(staged.stray_quotes)
        ledger.write(con, _entry(file, staged.fingerprint, ledger.LOADED, at, loaded, quarantined))
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return loaded, quarantined, problems


@dataclass(frozen=True)
class StagedGroup:
    """A group's joined file staged as one (groups.py), or `staged` None: load each file alone; and the
    files of the group to load alone anyway."""

    joined: groups.Joined | None
    staged: Staged | None
    alone: list[LandingFile]


def _stage_group(con: duckdb.DuckDBPyConnection, files: list[LandingFile], prefix: str) -> StagedGroup:
    """Join the files and stage the joined file like any other; on the worker thread, as `_stage`.

    Staged alone, a file none of whose lines is a JSON object fails as a whole (validate.not_this_format),
    which the joined file, with the others' objects, would not: such a group is loaded file by file."""
    joined, alone = groups.join(files)
    if joined is None:
        return StagedGroup(None, None, alone)
    whole = replace(joined.files[0], path=joined.path, name=whole_name(joined), size_bytes=joined.path.stat().st_size)
    try:
        staged = _stage(con, whole, None, prefix)
    finally:
        joined.path.unlink(missing_ok=True)  # staging copied what it read into its tables
    if staged.error is None and staged.records is not None and staged.line_map is not None:
        con.execute(f"create table {prefix}offsets as {joined.offsets_sql()}")
        line = staged.line_map.line("s.__pos")
        (with_objects,) = con.execute(f"""
            select count(distinct __o.file)
            from (select rowid as __pos, * from {staged.table}
                  where _ok or case when json_valid(_record) then json_type(_record) end = 'OBJECT') as s
            {staged.line_map.join("s.__pos")}
            join {prefix}offsets as __o on ({line}) between __o.first_line and __o.last_line
            """).fetchone()
        if with_objects == len(joined.files):
            return StagedGroup(joined, staged, alone)
    if staged.prefix:
        con.execute(f"drop schema if exists {staged.prefix.rstrip('.')} cascade")
    return StagedGroup(None, None, files)


def _ingest_group(con: duckdb.DuckDBPyConnection, files: list[LandingFile], pending: Future[StagedGroup],
                  ingested_at: datetime) -> list[FileResult]:
    group = pending.result()
    # Alone, each says its own error, as without grouping.
    results = [_ingest(con, file, None, _done(_stage(con, file, None, f"{STAGING}.alone{i}.")), ingested_at)
               for i, file in enumerate(group.alone)]
    if group.staged is None or group.joined is None:
        return results
    try:
        return results + _insert_group(con, group.joined, group.staged, ingested_at)
    finally:
        con.execute(f"drop schema if exists {group.staged.prefix.rstrip('.')} cascade")


def _done(staged: Staged) -> Future[Staged]:
    future: Future[Staged] = Future()
    future.set_result(staged)
    return future


def _insert_group(con: duckdb.DuckDBPyConnection, joined: groups.Joined, staged: Staged, at: datetime
                  ) -> list[FileResult]:
    """Insert a staged group in one transaction, each row, quarantined record and ledger entry its own file's."""
    source, records, line_map, prefix = joined.files[0].source, staged.records, staged.line_map, staged.prefix
    assert source is not None and records is not None and line_map is not None
    offsets = f"{prefix}offsets"  # made by _stage_group
    # A line of the joined file, as (its file, its line there).
    place = f"join {offsets} as __o on ({{line}}) between __o.first_line and __o.last_line"
    columns = ", ".join(f'"{c.name}"' for c in source.columns)
    raw_line = line_map.line("s.__pos")
    con.begin()
    try:
        (loaded,) = con.execute(f"""
            insert into {tables.raw_table(source)} ({columns}, _file, _line, _ingested_at)
            select {columns}, __o.file, {raw_line} - __o.first_line + 1, ?
            from (select rowid as __pos, * from {staged.table} where _ok) as s
            {line_map.join("s.__pos")}
            {place.format(line=raw_line)}
            """, [at]).fetchone()
        if loaded != staged.good:
            raise RuntimeError(f"{whole_name(joined)}: staged {staged.good} good rows but inserted {loaded}")
        problem_line = line_map.line("p.pos")
        structural = (f"""
            union all
            select __o.file, ?, g.line - __o.first_line + 1, NULL, r.reason, r.record, ?
            from {prefix}rejected as r join {line_map.gap_lines} as g using (d)
            {place.format(line="g.line")}
            """ if records.rejected else "")
        con.execute(f"""
            insert into {tables.QUARANTINE} (file, source, line, field, reason, record, ingested_at)
            select __o.file, ?, {problem_line} - __o.first_line + 1, p.field, p.reason, p.record, ?
            from ({validate.problems(source, records, staged.table)}) as p
            {line_map.join("p.pos")}
            {place.format(line=problem_line)}
            {structural}
            """, [source.name, at] + ([source.name, at] if records.rejected else []))
        loaded_by = dict(con.execute(
            f"select _file, count(*) from {tables.raw_table(source)} where _ingested_at = ? "
            f"and _file in (select file from {offsets}) group by _file", [at]).fetchall())
        problems: dict[str, list[Problem]] = {}
        quarantined_by: dict[str, int] = {}
        for file, line, reason, records_in_file in con.execute(f"""
                select file, line, reason, count(distinct line) over (partition by file)
                from {tables.QUARANTINE}
                where ingested_at = ? and file in (select file from {offsets})
                qualify row_number() over (partition by file order by line, field) <= {_PROBLEMS_SHOWN}
                """, [at]).fetchall():
            problems.setdefault(file, []).append(Problem(file, line, reason))
            quarantined_by[file] = records_in_file
        entries = [_entry(f, None, ledger.LOADED, at, loaded_by.get(f.name, 0), quarantined_by.get(f.name, 0))
                   for f in joined.files]
        entries = [replace(e, sha256=sha) for e, sha in zip(entries, joined.sha256, strict=True)]
        ledger.write_new(con, entries)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return [_result(f, LOADED, loaded_by.get(f.name, 0), quarantined_by.get(f.name, 0),
                    problems=tuple(problems.get(f.name, ()))) for f in joined.files]


def whole_name(joined: groups.Joined) -> str:
    return f"{joined.files[0].name} and {len(joined.files) - 1} more"
