"""The landing folder: which files are there, which source each belongs to, and their fingerprints."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from activations.ingest.contract import SOURCES, Source

# Longest suffix first, so `.csv.gz` wins over `.gz`.
FORMAT_BY_SUFFIX = {
    ".csv.gz": "csv",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

_CHUNK = 1 << 22
_EPOCH = datetime(1970, 1, 1)
# A link could point anywhere (outside the folder, at another landing file, at nothing): only
# the regular files actually in the folder are the user's landed data.
SYMLINK = "a symbolic link: not read (landing files must be regular files in the folder)"
NOT_REGULAR = "not a regular file: not read"


@dataclass(frozen=True)
class LandingFile:
    path: Path
    name: str  # path relative to the landing root, with forward slashes: the file's identity everywhere
    source: Source | None
    format: str | None
    size_bytes: int
    modified_at: datetime  # naive UTC, microseconds, as stored in the ledger
    kind_problem: str | None = None  # a symbolic link or not a regular file: never read

    @property
    def gzipped(self) -> bool:
        return self.path.name.lower().endswith(".gz")

    @property
    def skip_reason(self) -> str | None:
        """Why this file is not read, or None when it belongs to a source in a known format."""
        if self.kind_problem is not None:
            return self.kind_problem
        if self.source is None:
            folders = ", ".join(s.folder for s in SOURCES)
            return f"not in a source folder (expected one of: {folders})"
        if self.format is None:
            return "unknown file type (expected .csv, .csv.gz, .jsonl, .ndjson or .parquet)"
        return None


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    lines: int  # physical lines of the (decompressed) text, counting a last line without a line break
    trailing_blank_lines: int
    quotes: int = 0  # double quote characters in the (decompressed) text: none, no quoted value can run away


def scan(landing: Path) -> list[LandingFile]:
    """Every entry under the landing root, in path order; hidden entries and `_`-folders are left out.

    Symbolic links (to files or folders, dangling or not) and other non-regular files are listed
    with the reason they are not read, so the report names them; none is ever opened or followed.
    """
    found: list[LandingFile] = []
    for folder, dirs, files in os.walk(landing):
        visible = sorted(d for d in dirs if not d.startswith((".", "_")))
        dirs[:] = [d for d in visible if not (Path(folder) / d).is_symlink()]
        for filename in sorted(files) + [d for d in visible if d not in dirs]:
            if filename.startswith("."):
                continue
            path = Path(folder) / filename
            try:
                info = path.lstat()  # the entry itself: a link is never followed
            except FileNotFoundError:
                continue  # removed since the folder was listed: nothing to load
            name = path.relative_to(landing).as_posix()
            kind = SYMLINK if stat.S_ISLNK(info.st_mode) else None if stat.S_ISREG(info.st_mode) else NOT_REGULAR
            found.append(
                LandingFile(
                    path=path,
                    name=name,
                    source=_source_of(name),
                    format=_format_of(filename),
                    size_bytes=info.st_size,
                    modified_at=_EPOCH + timedelta(microseconds=info.st_mtime_ns // 1000),
                    kind_problem=kind,
                )
            )
    return sorted(found, key=lambda f: f.name)


def _source_of(name: str) -> Source | None:
    folder = name.split("/")[:-1]
    matches = [s for s in SOURCES if folder[: len(s.folder.split("/"))] == s.folder.split("/")]
    return max(matches, key=lambda s: len(s.folder), default=None)


def _format_of(filename: str) -> str | None:
    lower = filename.lower()
    return next((fmt for suffix, fmt in FORMAT_BY_SUFFIX.items() if lower.endswith(suffix)), None)


def fingerprint(file: LandingFile) -> Fingerprint:
    """The file's sha256, and its line and quote counts (text formats) to check line numbers against."""
    digest = hashlib.sha256()
    newlines = quotes = 0
    tail = b""
    count_lines = file.format != "parquet" and not file.gzipped
    with open(file.path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            if count_lines:
                newlines += chunk.count(b"\n")
                quotes += chunk.count(b'"')
                tail = (tail + chunk)[-65536:]
    if file.format != "parquet" and file.gzipped:
        newlines, quotes, tail = _count_gzip_lines(file.path)
    return Fingerprint(digest.hexdigest(), *_line_stats(newlines, tail), quotes)


def _count_gzip_lines(path: Path) -> tuple[int, int, bytes]:
    newlines = quotes = 0
    tail = b""
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                newlines += chunk.count(b"\n")
                quotes += chunk.count(b'"')
                tail = (tail + chunk)[-65536:]
    except (OSError, EOFError):
        pass  # the reader reports a broken archive with a better message
    return newlines, quotes, tail


def _line_stats(newlines: int, tail: bytes) -> tuple[int, int]:
    if not tail:
        return 0, 0
    lines = newlines + (0 if tail.endswith(b"\n") else 1)
    ending = tail[len(tail.rstrip(b"\r\n")) :]
    return lines, max(ending.count(b"\n") - 1, 0)


_BLANK_LINE = re.compile(rb"\n\r?(?=\n)")


def blank_lines(file: LandingFile) -> list[int]:
    """Line numbers of the empty lines of a text file (needed only when its line count says it has some)."""
    found: list[int] = []
    newlines_before_chunk = 0
    carry = b"\n"  # the file starts at the start of a line, as if after a line break
    opener = gzip.open if file.gzipped else open
    with opener(file.path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            data = carry + chunk
            counted_to, newlines = len(carry), newlines_before_chunk
            for match in _BLANK_LINE.finditer(data):
                end = match.end()  # where the blank line's own line break is
                if end < len(carry):
                    continue  # found with the previous chunk
                newlines += data.count(b"\n", counted_to, end)
                counted_to = end
                found.append(newlines + 1)
            newlines_before_chunk += chunk.count(b"\n")
            carry = data[-2:]
    return found
