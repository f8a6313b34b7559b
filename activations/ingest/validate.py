"""Validation: cast each record's text to the contract's types, and say what is wrong with the rest.

`stage` reads a file once into a staging table of typed values, marking each record
loadable or not; `problems` turns the records that are not into quarantine rows, one per
problem, with a reason a user can act on. Only the few failing values are trimmed or
re-read, so the common path is one cast per value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from activations.ingest.contract import Column, Source
from activations.ingest.readers import Records
from activations.ingest.sql import ident, literal

_SHOWN_VALUE_CHARS = 60


@dataclass(frozen=True)
class Rule:
    cast: Callable[[str], str]  # SQL text -> SQL typed value (NULL when it doesn't cast)
    valid: Callable[[str, str], str]  # (SQL text, SQL typed value) -> SQL boolean, for a non-empty text
    expected: str  # "is not {expected}" in a reason


RULES: dict[str, Rule] = {
    "string": Rule(lambda v: v, lambda v, t: "true", "text"),
    # try_cast rounds '1.5' to 2: a whole number must also read the same as a double.
    "bigint": Rule(
        lambda v: f"try_cast({v} as bigint)",
        lambda v, t: f"coalesce(try_cast({v} as double) = {t}, false)",
        "a whole number",
    ),
    "double": Rule(
        lambda v: f"try_cast({v} as double)",
        lambda v, t: f"coalesce(isfinite({t}), false)",
        "a number (expected e.g. 12.5)",
    ),
    "boolean": Rule(
        lambda v: f"try_cast(trim({v}) as boolean)",
        lambda v, t: f"{t} is not null",
        "a boolean (expected true/false, 1/0 or yes/no)",
    ),
    "date": Rule(lambda v: f"try_cast({v} as date)", lambda v, t: f"{t} is not null", "a date (expected YYYY-MM-DD)"),
    # With TimeZone = UTC, text with an offset is converted to UTC and text without one is taken as UTC;
    # make_timestamp(epoch_us()) keeps that instant as a plain TIMESTAMP, 2-3x faster than a cast.
    "timestamp": Rule(
        lambda v: f"make_timestamp(epoch_us(try_cast({v} as timestamptz)))",
        lambda v, t: f"{t} is not null",
        "a timestamp (expected ISO 8601, e.g. 2024-05-01T10:00:00Z)",
    ),
}


def _text(column: Column, records: Records) -> str:
    """A column's text in a record; empty text is NULL."""
    field = records.fields.get(column.name)
    return "NULL::VARCHAR" if field is None else f"nullif({field}, '')"


def _blank(text: str) -> str:
    """SQL boolean: non-empty text that is only blanks, which counts as empty in a typed column."""
    return f"trim({text}) = ''"


def _typed(column: Column, text: str) -> str:
    """SQL for the value as loaded: cast to the column's type, or trimmed into its case (blank: NULL)."""
    if column.case is not None:
        return f"nullif({column.case}(trim({text})), '')"
    return RULES[column.type].cast(text)


def _checked(source: Source) -> list[Column]:
    return [c for c in source.columns if c.constrained]


def _blank_is_empty(column: Column) -> bool:
    return column.type != "string" or column.case is not None


def _number(value: float) -> str:
    return f"{value:g}"


def _rules(column: Column, text: str, typed: str) -> list[tuple[str, str]]:
    """(SQL boolean: a non-empty value passes, what it is not) for each rule of the column, in the order checked."""
    rules = []
    if column.type != "string":
        rules.append((RULES[column.type].valid(text, typed), RULES[column.type].expected))
    if column.values:
        accepted = ", ".join(literal(v) for v in column.values)
        rules.append((f"coalesce({typed} in ({accepted}), false)", f"one of {', '.join(column.values)}"))
    if column.pattern is not None:
        regex, meaning = column.pattern
        rules.append((f"coalesce(regexp_full_match({typed}, {literal(regex)}), false)", meaning))
    low, high = column.minimum, column.maximum
    if low is not None or high is not None:
        bounds = " and ".join(
            [f"{typed} >= {low!r}"] * (low is not None) + [f"{typed} <= {high!r}"] * (high is not None)
        )
        if low is not None and high is not None:
            meaning = f"between {_number(low)} and {_number(high)}"
        else:
            meaning = f"at least {_number(low)}" if low is not None else f"at most {_number(high)}"
        rules.append((f"coalesce({bounds}, false)", meaning))
    return rules


def _check(column: Column, text: str, typed: str) -> str:
    """SQL boolean: the column's value is acceptable (trimming only the few values that don't cast)."""
    rules = _rules(column, text, typed)
    valid = " and ".join(f"({ok})" for ok, _ in rules) or "true"
    if column.required:
        present = f"{text} is not null and not {_blank(text)}" if column.case else f"{text} is not null"
        return f"({present} and {valid})"
    if not rules:
        return "true"
    return f"({text} is null or {valid} or {_blank(text)})"


def stage(con: duckdb.DuckDBPyConnection, source: Source, records: Records, table: str) -> int:
    """Read the file into `table` (row order = file order); returns how many records it holds.

    `_ok` is true for a loadable record, false for one to quarantine, NULL for a blank line.
    Quarantined records keep their text (`_record`) and their checked fields' text (`_raw`).
    """
    texts = {c.name: f"__v_{i}" for i, c in enumerate(source.columns)}
    typed = {c.name: f"__t_{i}" for i, c in enumerate(source.columns)}
    inner = ", ".join(
        f"{_text(c, records)} as {texts[c.name]}, {_typed(c, _text(c, records))} as {typed[c.name]}"
        for c in source.columns
    )
    checks = " and ".join([f"({records.valid})"] + [_check(c, texts[c.name], typed[c.name]) for c in _checked(source)])
    raw = ", ".join(f"{ident(c.name)} := {texts[c.name]}" for c in _checked(source))
    outputs = ", ".join(f"{typed[c.name]} as {ident(c.name)}" for c in source.columns)
    con.execute(f"""
        create table {table} as
        select {outputs},
               __ok as _ok,
               case when not __ok then {records.record} end as _record,
               case when not __ok then struct_pack({raw}) end as _raw
        from (
            select *, case when {records.blank} then null else {checks} end as __ok
            from (select *, {inner} from {records.relation})
        )
    """)
    count, first, last = con.execute(f"select count(*), min(rowid), max(rowid) from {table}").fetchone()
    if count and (first, last) != (0, count - 1):
        # Row ids are file positions only for a table created outside an explicit transaction.
        raise RuntimeError(f"staged rows are numbered {first}..{last}, expected 0..{count - 1}")
    return count


def problems(source: Source, records: Records, table: str) -> str:
    """SQL query (pos, field, reason, record): one row per problem of each quarantined record staged in `table`."""
    bad = f"(select rowid as pos, * from {table} where not _ok)"
    shape = records.shape_problem or "NULL::VARCHAR"
    parts = [
        "select pos, NULL::VARCHAR as field, __shape as reason, _record as record from shaped where __shape is not null"
    ]
    for column in _checked(source):
        text, typed = f"_raw.{ident(column.name)}", ident(column.name)
        empty = f"({text} is null or {_blank(text)})" if _blank_is_empty(column) else f"{text} is null"
        if column.required:
            parts.append(
                f"select pos, {literal(column.name)}, {literal(f'required field {column.name} is empty')}, _record "
                f"from shaped where __shape is null and {empty}"
            )
        rules = _rules(column, text, typed)
        if rules:
            shown = (
                f"case when length({text}) > {_SHOWN_VALUE_CHARS} "
                f"then left({text}, {_SHOWN_VALUE_CHARS}) || '...' else {text} end"
            )
            quoted = f"'''' || {shown} || ''''"
            # The first rule the value breaks is the reason: a range says nothing about text that isn't a number.
            first_broken = " ".join(
                f"when not ({ok}) then {literal(f'field {column.name}: {{}} is not {meaning}')}"
                for ok, meaning in rules
            )
            parts.append(
                f"select pos, {literal(column.name)}, format(case {first_broken} end, {quoted}), _record from shaped "
                f"where __shape is null and not {empty} and not ({' and '.join(f'({ok})' for ok, _ in rules)})"
            )
    union = "\nunion all\n".join(parts)
    return f"with shaped as (select *, {shape} as __shape from {bad})\n{union}"


def not_this_format(con: duckdb.DuckDBPyConnection, records: Records, table: str) -> str | None:
    """Why a file is the wrong format altogether: JSON lines none of which is a JSON object."""
    if records.shape_problem is None:
        return None
    loaded, objects = con.execute(
        f"select count(*) filter (where _ok), "
        f"count(*) filter (where not _ok and case when json_valid(_record) then json_type(_record) end = 'OBJECT') "
        f"from {table}"
    ).fetchone()
    if loaded or objects:
        return None
    return "no line is a JSON object: expected JSON lines, one object per line"
