"""Line numbers: where each staged record starts in its file.

The readers keep records in file order, so a record's line is its position plus the lines
before it that are not records of their own: the header, lines the reader rejected (it
numbers them itself, not counting line breaks inside quoted values), blank lines it
skipped, and line breaks inside quoted CSV values. Those are rare, so they are kept as a
short list of events and applied to every record with a hash join on small blocks of
positions, never a sort of the whole file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

_NO_GAPS = "select NULL::BIGINT as d, NULL::BIGINT as nl where false"
_NO_MULTILINE = "select NULL::BIGINT as pos, NULL::BIGINT as nl where false"


@dataclass(frozen=True)
class LineMap:
    """Turns a staged record's position (0-based) into its 1-based line in the file."""

    first_line: int  # lines before the first record: the header
    bits: int | None  # log2 of the block size, or None when no event moves any line
    prefix: str  # where its tables are: `{prefix}gap_lines` (d, line) gives the file line of each gap

    @property
    def gap_lines(self) -> str:
        return f"{self.prefix}gap_lines"

    def join(self, pos: str) -> str:
        """The join clause `line()` needs, for a query whose record position is `pos`."""
        blocks = f"{self.prefix}line_blocks"
        return "" if self.bits is None else f"join {blocks} as __b on __b.block = ({pos}) >> {self.bits}"

    def line(self, pos: str) -> str:
        """SQL for the file line of the record at position `pos` (with `join(pos)` in the query)."""
        base = f"({pos}) + {self.first_line + 1}"
        if self.bits is None:
            return base
        moved = f"list_filter(__b.events, lambda e: e.k <= ({pos}))"
        return f"{base} + __b.before + coalesce(list_sum(list_transform({moved}, lambda e: e.w)), 0)"


def build(
    con: duckdb.DuckDBPyConnection,
    prefix: str,
    *,
    records: int,
    first_line: int,
    gaps: str | None = None,
    multiline: str | None = None,
    blank_lines: list[int] | None = None,
) -> LineMap:
    """Prepare the line map of a staged file in tables named `{prefix}...`.

    gaps: SQL query (d, nl): records the reader rejected, at its own line count `d`
          (which counts blank lines but not line breaks inside values), spread over `nl` more lines.
    multiline: SQL query (pos, nl): staged records whose values hold `nl` line breaks.
    blank_lines: file lines that are empty, which the reader skipped.
    """
    gaps_table, multiline_table, events_table = f"{prefix}gaps", f"{prefix}multiline", f"{prefix}line_events"
    con.execute(f"create table {gaps_table} as select d, nl from ({gaps or _NO_GAPS})")
    con.execute(f"create table {multiline_table} as select pos, nl from ({multiline or _NO_MULTILINE}) where nl > 0")
    if blank_lines:
        _merge_in_python(con, prefix, first_line, blank_lines)
    else:
        _events_in_sql(con, prefix, first_line)
    events = con.execute(f"select count(*) from {events_table}").fetchone()[0]
    if not events:
        return LineMap(first_line, None, prefix)
    # About one event per block keeps both the block table and each row's event list small.
    bits = min(max(int(math.log2(max(records, 1) / events)), 3), 16)
    con.execute(f"""
        create table {prefix}line_blocks as
        with per_block as (
            select k >> {bits} as block, list({{'k': k, 'w': w}}) as events, sum(w) as total
            from {events_table}
            group by 1
        )
        select r.block,
               coalesce(sum(per_block.total) over (order by r.block rows between unbounded preceding and 1 preceding), 0)
                   as before,
               coalesce(per_block.events, []) as events
        from range(0, {(records >> bits) + 1}) as r(block)
        left join per_block using (block)
    """)
    return LineMap(first_line, bits, prefix)


def _events_in_sql(con: duckdb.DuckDBPyConnection, prefix: str, first_line: int) -> None:
    """Without blank lines, the reader's line count is exact up to line breaks inside values.

    A gap's slot is how many staged records come before it: its line minus the header
    and the gaps before it. Records from that slot on move down by the gap's lines.
    """
    con.execute(f"""
        create table {prefix}line_events as
        with slotted as (
            select d, nl, d - {first_line + 1} - (row_number() over (order by d) - 1) as slot from {prefix}gaps
        )
        select slot as k, 1 + nl as w from slotted
        union all
        select pos + 1 as k, nl as w from {prefix}multiline
    """)
    con.execute(f"""
        create table {prefix}gap_lines as
        with slotted as (
            select d, nl, d - {first_line + 1} - (row_number() over (order by d) - 1) as slot from {prefix}gaps
        )
        select g.d,
               g.d + coalesce(sum(g.nl) over (order by g.d rows between unbounded preceding and 1 preceding), 0)
                   + coalesce((select sum(m.nl) from {prefix}multiline as m where m.pos < g.slot), 0) as line
        from slotted as g
    """)


def _merge_in_python(con: duckdb.DuckDBPyConnection, prefix: str, first_line: int, blank_lines: list[int]) -> None:
    """With blank lines (known by file line) the three kinds of events must be walked in file order.

    Only the events are walked, never the records: runs of plain records between them are skipped in one step.
    """
    gaps = con.execute(f"select d, nl from {prefix}gaps order by d").fetchall()
    multiline = con.execute(f"select pos, nl from {prefix}multiline order by pos").fetchall()
    blanks = sorted(blank_lines)
    reader_line = file_line = first_line  # the last line passed, as the reader counts and in the file
    position = shift = 0  # next staged record; how far it sits below `position + first_line + 1`
    keys: list[int] = []
    weights: list[int] = []
    gap_d: list[int] = []
    gap_line: list[int] = []
    g = m = b = 0
    while g < len(gaps) or m < len(multiline) or b < len(blanks):
        # Plain records before each candidate; a gap or blank line comes before a record at the same place.
        ahead = [
            (gaps[g][0] - reader_line - 1, 0) if g < len(gaps) else None,
            (blanks[b] - file_line - 1, 1) if b < len(blanks) else None,
            (multiline[m][0] - position, 2) if m < len(multiline) else None,
        ]
        plain, kind = min(a for a in ahead if a is not None)
        plain = max(plain, 0)
        reader_line, file_line, position = reader_line + plain + 1, file_line + plain + 1, position + plain
        if kind == 0:
            gap_d.append(gaps[g][0])
            gap_line.append(file_line)
            file_line += gaps[g][1]
            g += 1
        elif kind == 1:
            b += 1
        else:
            file_line += multiline[m][1]
            position += 1
            m += 1
        new_shift = file_line - position - first_line
        if new_shift != shift:
            keys.append(position)
            weights.append(new_shift - shift)
            shift = new_shift
    con.execute(
        f"create table {prefix}line_events as select unnest(?::BIGINT[]) as k, unnest(?::BIGINT[]) as w",
        [keys, weights],
    )
    con.execute(
        f"create table {prefix}gap_lines as select unnest(?::BIGINT[]) as d, unnest(?::BIGINT[]) as line",
        [gap_d, gap_line],
    )
