"""Many small new JSON-lines files of one source, loaded as one: how they are grouped and joined.

The event collector (`attiva serve`) writes a file per request, a few events each: at 100 events a
second that is thousands of files a minute. Loaded one by one, each costs about 20 ms however small
(its statements and its commit): 2,124 such files took 49 s. So consecutive new, small, plain
JSON-lines files of one source are joined, in name order, into one temporary file, which is read,
checked and line-numbered once like any landing file (load.py), and inserted in one transaction;
`offsets` turns a line of the joined file back into its own file and line, so every row, quarantined
record and ledger entry is each file's own, exactly as if loaded alone. When the joined file cannot
be read as a whole, each file is loaded alone, as always, and says its own error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from activations.ingest.landing import LandingFile

SMALL_FILE_BYTES = 256 << 10  # larger files gain nothing from grouping: their rows dominate their cost
GROUP_BYTES = 32 << 20
GROUP_FILES = 5000
_BOM = b"\xef\xbb\xbf"


def groupable(file: LandingFile, replacing: bool) -> bool:
    """A new, small, non-empty, uncompressed JSON-lines file of a known source."""
    return (not replacing and file.format == "jsonl" and not file.gzipped and file.source is not None
            and 0 < file.size_bytes <= SMALL_FILE_BYTES)


def plan(files: list[LandingFile], replacing: set[str]) -> list[list[LandingFile]]:
    """The files to stage, in order, as units: consecutive groupable files of one source, or a file alone."""
    units: list[list[LandingFile]] = []
    run: list[LandingFile] = []
    size = 0

    def close_run() -> None:
        nonlocal run, size
        if run:
            units.append(run)
        run, size = [], 0

    for file in files:
        if not groupable(file, file.name in replacing):
            close_run()
            units.append([file])
            continue
        if run and (run[0].source != file.source or size + file.size_bytes > GROUP_BYTES or len(run) >= GROUP_FILES):
            close_run()
        run.append(file)
        size += file.size_bytes
    close_run()
    return units


@dataclass(frozen=True)
class Joined:
    """The joined file, each file's sha256, and where each file's lines are in it (1-based, inclusive)."""

    path: Path
    files: list[LandingFile]
    sha256: list[str]
    first_lines: list[int]
    last_lines: list[int]

    def offsets_sql(self) -> str:
        """SQL rows (file, first_line, last_line): which file a joined line belongs to."""
        rows = ", ".join(f"({_quote(f.name)}, {a}, {b})"
                         for f, a, b in zip(self.files, self.first_lines, self.last_lines, strict=True))
        return f"select * from (values {rows}) as t(file, first_line, last_line)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def join(files: list[LandingFile]) -> tuple[Joined | None, list[LandingFile]]:
    """The files' texts, one after the other, in a temporary file (each ending with a line break), and the
    files left to load alone, as they would fail or read differently in the middle of others: unreadable
    now, blank (alone: "file is empty"), holding a NUL byte (alone: "binary") or a carriage return (DuckDB's
    reader takes one line break style per file), starting with a byte-order mark (alone, the reader drops
    it), or with no line that starts an object (alone: "no line is a JSON
    object"; load.py checks the joined lines again, as DuckDB reads them)."""
    handle, name = tempfile.mkstemp(prefix="attiva-ingest-group-", suffix=".jsonl")
    joined: list[LandingFile] = []
    alone: list[LandingFile] = []
    sha256, first_lines, last_lines, line = [], [], [], 0
    with os.fdopen(handle, "wb") as out:
        for file in files:
            try:
                data = file.path.read_bytes()  # read once: the hash and the lines are of these bytes
            except OSError:
                alone.append(file)
                continue
            if (not data.strip() or data.startswith(_BOM) or b"\0" in data or b"\r" in data
                    or not any(row.lstrip().startswith(b"{") for row in data.splitlines())):
                alone.append(file)
                continue
            ended = data.endswith(b"\n")
            out.write(data if ended else data + b"\n")
            joined.append(file)
            sha256.append(hashlib.sha256(data).hexdigest())
            first_lines.append(line + 1)
            line += data.count(b"\n") + (0 if ended else 1)
            last_lines.append(line)
    if not joined:
        Path(name).unlink(missing_ok=True)
        return None, alone
    return Joined(Path(name), joined, sha256, first_lines, last_lines), alone
