"""Readers: each landing file as records of text fields, through DuckDB's native readers.

Every value is read as text, so a bad value never stops a file: `validate` casts and
checks it in SQL and quarantines the record. Records keep file order, which is how a
record's line number is found again (see `lines`). Whatever makes a whole file unusable
(empty, binary, no header, a required column missing) raises `Unreadable`.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from dataclasses import dataclass

import duckdb

from activations.ingest.contract import Source
from activations.ingest.landing import LandingFile
from activations.ingest.sql import exact_path, ident, literal

REJECTS = "_ingest_rejects"
REJECT_SCANS = "_ingest_reject_scans"
_HEAD_BYTES = 65536
_NOT_IN_JSON = "\x01"  # JSON text never holds a raw control character, so no line is ever split on it


class Unreadable(Exception):
    """A file that cannot be loaded at all; the message says why, in the user's words."""


@dataclass(frozen=True)
class Records:
    relation: str  # SQL table expression: the file's records, in file order
    fields: dict[str, str]  # contract column -> SQL text of its value in a record; columns the file lacks are absent
    record: str  # SQL: a record's text, as kept in the quarantine
    valid: str = "true"  # SQL boolean: the record could be parsed at all
    blank: str = "false"  # SQL boolean: an empty line, neither loaded nor quarantined
    first_line: int = 0  # lines before the first record (1: the CSV header)
    shape_problem: str | None = None  # SQL over `_record`: why a record is unusable as a whole, else NULL
    rejected: str | None = None  # SQL query (d, reason, record): records the reader could not split, by its line count
    newlines: str | None = None  # SQL query (nl): line breaks inside each record's values, one row per record
    width: int = 0  # CSV: fields in the header, as many as a whole record has


def open_records(con: duckdb.DuckDBPyConnection, file: LandingFile, source: Source) -> Records:
    """How to read `file` as records of `source`; raises Unreadable when it can't be read at all."""
    if file.size_bytes == 0:
        raise Unreadable("file is empty")
    con.execute(f"drop table if exists {REJECTS}")
    con.execute(f"drop table if exists {REJECT_SCANS}")
    if file.format == "csv":
        return _csv(file, source)
    if file.format == "jsonl":
        return _jsonl(file, source)
    return _parquet(con, file, source)


def _head(file: LandingFile) -> bytes:
    try:
        if file.gzipped:
            with gzip.open(file.path, "rb") as stream:
                head = stream.read(_HEAD_BYTES)
        else:
            with open(file.path, "rb") as stream:
                head = stream.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as error:
        raise Unreadable(f"not a readable gzip file ({error})") from None
    if not head.strip():
        raise Unreadable("file is empty")
    if b"\0" in head:
        raise Unreadable("file is binary, not UTF-8 text")
    return head


def _header(file: LandingFile) -> list[str]:
    head = _head(file)
    first, newline, _ = head.partition(b"\n")
    if not newline and len(head) == _HEAD_BYTES:
        raise Unreadable("no header row: the first line is longer than 64 KB")
    try:
        text = first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise Unreadable("the header row is not UTF-8 text") from None
    if not text.strip():
        raise Unreadable("no header row: the first line is empty")
    return [name.strip().lower() for name in next(csv.reader([text]))]


def _match_columns(names: list[str], source: Source) -> dict[str, int]:
    """Contract column -> position in the file; fails when a required column is missing."""
    wanted = set(source.column_names)
    positions: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in wanted:
            if name in positions:
                raise Unreadable(f"column {name} appears twice in the header")
            positions[name] = position
    if not positions:
        example = ", ".join(source.column_names[:4])
        raise Unreadable(
            f"the first line names none of the {source.name} columns ({example}, ...): "
            "no header row, another separator than comma, or the wrong folder?"
        )
    missing = [c.name for c in source.columns if c.required and c.name not in positions]
    if missing:
        raise Unreadable(f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    return positions


def _csv(file: LandingFile, source: Source) -> Records:
    names = _header(file)
    positions = _match_columns(names, source)
    columns = [f"c{i}" for i in range(len(names))]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    options = f"columns = {spec}, header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"'"
    read = f"read_csv({exact_path(file.path)}, {options}"
    quoted = ", ".join(_csv_field(c) for c in columns)
    newline_count = " + ".join(f"coalesce(length({c}) - length(replace({c}, chr(10), '')), 0)" for c in columns)
    return Records(
        relation=f"{read}, store_rejects = true, rejects_table = '{REJECTS}', rejects_scan = '{REJECT_SCANS}')",
        fields={name: columns[position] for name, position in positions.items()},
        record=f"concat_ws(',', {quoted})",
        first_line=1,
        rejected=_rejected_sql(
            {
                "MISSING COLUMNS": f"format('expected {len(names)} fields, found {{}}', min_idx)",
                "TOO MANY COLUMNS": f"format('expected {len(names)} fields, found {{}}', max_idx)",
                "UNQUOTED VALUE": "'misplaced quote: a quoted value is not closed, or has text after its closing quote'",
            }
        ),
        newlines=f"select {newline_count} as nl from {read}, ignore_errors = true)",
        width=len(names),
    )


def _csv_field(column: str) -> str:
    """A value written back as CSV, quoted when it has to be, to show a quarantined record."""
    needs_quotes = " or ".join(f"contains({column}, {ch})" for ch in ("','", "'\"'", "chr(10)", "chr(13)"))
    return (
        f"case when {column} is null then '' when {needs_quotes} "
        f"then '\"' || replace({column}, '\"', '\"\"') || '\"' else {column} end"
    )


def _jsonl(file: LandingFile, source: Source) -> Records:
    _head(file)
    shape = json.dumps({name: "VARCHAR" for name in source.column_names})
    read = (
        f"read_csv({exact_path(file.path)}, columns = {{'l': 'VARCHAR'}}, header = false, auto_detect = false, "
        f"delim = '{_NOT_IN_JSON}', quote = '', escape = '', "
        f"store_rejects = true, rejects_table = '{REJECTS}', rejects_scan = '{REJECT_SCANS}')"
    )
    return Records(
        relation=f"(select l, json_transform(try_cast(l as json), {literal(shape)}) as j from {read})",
        fields={name: f"j.{ident(name)}" for name in source.column_names},
        record="l",
        valid="j is not null",
        blank="l is null or (j is null and trim(l, e' \\t\\r') = '')",
        shape_problem=(
            "case when not json_valid(_record) then 'line is not valid JSON' "
            "when json_type(_record) <> 'OBJECT' then 'line is not a JSON object' end"
        ),
        rejected=_rejected_sql({"TOO MANY COLUMNS": "'line is not valid JSON'"}),
    )


def _rejected_sql(reasons: dict[str, str]) -> str:
    """Lines DuckDB's CSV reader could not split, one per line, with a reason a user can act on."""
    common = {
        "INVALID ENCODING": "'line is not valid UTF-8 text'",
        "LINE SIZE OVER MAXIMUM": "'line is too long to read'",
    }
    cases = " ".join(f"when '{kind}' then {reason}" for kind, reason in {**common, **reasons}.items())
    return f"""
        with per_kind as (
            select line, error_type, min(column_idx) as min_idx, max(column_idx) as max_idx,
                   any_value(csv_line) as csv_line
            from {REJECTS}
            group by line, error_type
        )
        select line as d,
               arg_min(case error_type {cases} else 'line could not be read' end,
                       error_type::varchar) as reason,
               trim(any_value(csv_line), e'\\r\\n') as record
        from per_kind
        group by line
    """


def _parquet(con: duckdb.DuckDBPyConnection, file: LandingFile, source: Source) -> Records:
    read = f"read_parquet({exact_path(file.path)})"
    try:
        names = [row[0] for row in con.execute(f"describe select * from {read}").fetchall()]
    except duckdb.Error as error:
        raise Unreadable(f"not a readable Parquet file ({error_summary(error)})") from None
    positions = _match_columns([n.strip().lower() for n in names], source)
    everything = ", ".join(f"{ident(n)} := {ident(n)}" for n in names)
    return Records(
        relation=read,
        fields={name: f"cast({ident(names[p])} as varchar)" for name, p in positions.items()},
        record=f"to_json(struct_pack({everything}))",
    )


def error_summary(error: Exception) -> str:
    """The gist of a DuckDB error: its first line, without the error class."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(": ", 1)[1] if text.split(": ", 1)[0].endswith("Error") and ": " in text else text
