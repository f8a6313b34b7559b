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

import numpy as np

from activations.ingest.landing import LandingFile

_CHUNK = 1 << 22


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
    walk = _Walk(fields)
    with _open(file) as stream:
        stream.readline()  # the header
        carry = b""
        while chunk := stream.read(_CHUNK):
            text = carry + chunk
            end = text.rfind(b"\n") + 1
            walk.lines(text[:end])
            carry = text[end:]
        walk.lines(carry)
    return walk.finish()


class _Walk:
    """The line walk, a chunk of whole lines at a time: counted with numpy, only odd lines visited one by one."""

    def __init__(self, fields: int) -> None:
        self.fields = fields
        self.next_line = 2  # the line number of the next line to come (after the header)
        self.opened: tuple[int, bytes] | None = None  # the line whose quoted value is still open
        self.swallowed = False  # a whole record was read inside that value
        self.found: list[StrayQuote] = []

    def lines(self, text: bytes) -> None:
        """Walk `text`, whole lines (the last may lack its line break)."""
        if not text:
            return
        data = np.frombuffer(text, dtype=np.uint8)
        ends = np.flatnonzero(data == ord("\n"))
        if not len(ends) or ends[-1] != len(data) - 1:
            ends = np.append(ends, len(data))
        starts = np.concatenate(([0], ends[:-1] + 1))
        quotes = _per_line(np.flatnonzero(data == ord('"')), starts, ends)
        commas = _per_line(np.flatnonzero(data == ord(",")), starts, ends)
        # Lines that read as a whole record if they sit inside a quoted value; checked only there.
        maybe_whole = (quotes % 2 == 0) & ((quotes > 0) | (commas == self.fields - 1))
        odd = np.flatnonzero(quotes % 2 == 1)
        candidates = np.flatnonzero(maybe_whole)
        previous = 0  # first line not yet walked
        for i in [*odd.tolist(), len(ends)]:
            if self.opened is not None and not self.swallowed:
                between = candidates[np.searchsorted(candidates, previous) : np.searchsorted(candidates, i)]
                self.swallowed = any(self._whole(text[starts[j] : ends[j]]) for j in between.tolist())
            if i == len(ends):
                break
            line = text[starts[i] : ends[i]].rstrip(b"\r")
            if self.opened is None:
                self.opened, self.swallowed = (self.next_line + i, line), False
            else:
                if self.swallowed:
                    opened_on = self.opened[0]
                    self.found += [_stray(*self.opened), _stray(self.next_line + i, line, opened_on)]
                self.opened = None
            previous = i + 1
        self.next_line += len(ends)

    def finish(self) -> list[StrayQuote]:
        """The stray lines found, once every line is walked."""
        if self.opened is not None and self.swallowed:
            self.found.append(_stray(*self.opened))
        return self.found

    def _whole(self, line: bytes) -> bool:
        return _whole_record(line.rstrip(b"\r"), self.fields)


def _per_line(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many of `positions` fall in each line [start, end)."""
    return np.searchsorted(positions, ends) - np.searchsorted(positions, starts)


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
