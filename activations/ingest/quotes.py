"""Runaway quotes: a quoted CSV value left open swallows the lines after it into one record.

A CSV reader (DuckDB's, Python's) takes everything up to the next quote as one value, so
a single unclosed quote turns the rest of the file, or the lines up to the next stray
quote, into one record: quarantined as one, or worse, loaded with a status that holds a
hundred lines. A real quoted value over several lines (an address, a note) never holds a
line that reads as a whole record of the file on its own; a runaway one does.

So when a file has quotes and records over several lines, `runaway_quote_lines` walks its
physical lines: a line with an odd number of quotes opens a value and the next such line
closes it. If a line in between has the header's number of fields, the quote ran away:
the opening and closing lines are reported on their own and `without_lines` blanks them
in a copy of the file, so the reader takes every line in between as the record it is.
"""

from __future__ import annotations

import csv
import gzip
import tempfile
from dataclasses import dataclass
from pathlib import Path

from activations.ingest.landing import LandingFile


@dataclass(frozen=True)
class StrayQuote:
    line: int  # 1-based line in the file
    text: str  # the line as written, kept in the quarantine
    opened_on: int | None = None  # for a line that closes a value: where it was opened

    @property
    def reason(self) -> str:
        """What is wrong with the line, in the quarantine's words."""
        if self.opened_on is None:
            return "misplaced quote: the quoted value opened on this line is not closed on it"
        return f"misplaced quote: this line closes a quoted value opened on line {self.opened_on}"


def runaway_quote_lines(file: LandingFile, fields: int) -> list[StrayQuote]:
    """The lines of a CSV file whose quote swallowed whole records after it (the header's `fields` fields)."""
    found: list[StrayQuote] = []
    opened: tuple[int, bytes] | None = None  # the line whose quoted value is still open
    swallowed = False  # a whole record was read inside that value
    with _open(file) as stream:
        next(stream, None)  # the header
        for number, raw in enumerate(stream, 2):
            line = raw.rstrip(b"\r\n")
            odd = line.count(b'"') % 2 == 1
            if opened is None:
                opened, swallowed = ((number, line), False) if odd else (None, False)
            elif odd:
                if swallowed:
                    found += [_stray(*opened), _stray(number, line, opened[0])]
                opened = None
            elif not swallowed:
                swallowed = _whole_record(line, fields)
    if opened is not None and swallowed:
        found.append(_stray(*opened))
    return found


def without_lines(file: LandingFile, lines: set[int]) -> Path:
    """A plain-text temporary copy of the file with `lines` emptied (line numbers stay the same); remove it after."""
    handle = tempfile.NamedTemporaryFile("wb", prefix="attiva-landing-", suffix=".csv", delete=False)  # noqa: SIM115
    with handle, _open(file) as stream:
        for number, raw in enumerate(stream, 1):
            handle.write(raw[len(raw.rstrip(b"\r\n")) :] if number in lines else raw)
    return Path(handle.name)


def _open(file: LandingFile):  # noqa: ANN202 (a binary stream, plain or gzip)
    return gzip.open(file.path, "rb") if file.gzipped else open(file.path, "rb")  # noqa: SIM115


def _stray(number: int, line: bytes, opened_on: int | None = None) -> StrayQuote:
    return StrayQuote(number, line.decode("utf-8", "replace"), opened_on)


def _whole_record(line: bytes, fields: int) -> bool:
    """Whether a line with balanced quotes reads, on its own, as a record of `fields` fields."""
    if b'"' not in line:
        return line.count(b",") + 1 == fields
    return len(next(csv.reader([line.decode("utf-8", "replace")]))) == fields
