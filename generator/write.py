"""Writing landing files: CSV with one header line, JSON lines, and the ground truth in Parquet.

Structural breakage happens here, at line level, because a data frame cannot
hold it: in CSV a broken row loses its last field or gains an extra (trailing)
one; in JSON lines it is cut off mid-object. Event replays (the same line
twice, the copy arriving at the end of the file) are written here too.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

REPLAY_SHARE = 0.003


BLOCK_ROWS = 250_000  # rows rendered at a time: big enough for a fast writer, small enough to patch in memory


def write_csv(frame: pl.DataFrame, path: Path, broken: np.ndarray) -> int:
    """Write `frame` as CSV (header = its columns), breaking the lines of rows `broken`; returns data lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write((",".join(frame.columns) + "\n").encode())
        for start in range(0, frame.height, BLOCK_ROWS):
            buffer = io.BytesIO()
            frame.slice(start, BLOCK_ROWS).write_csv(buffer, include_header=False)
            hit = np.flatnonzero((broken >= start) & (broken < start + BLOCK_ROWS))
            fh.write(_break_csv_lines(buffer.getvalue(), broken[hit] - start, hit) if len(hit) else buffer.getvalue())
    return frame.height


def _break_csv_lines(data: bytes, rows: np.ndarray, serial: np.ndarray) -> bytes:
    """Drop the last field of some lines and add a trailing one to others, as broken exports do."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    if len(ends) <= rows.max():
        raise ValueError("a value contains a line break; rows cannot be broken line by line")
    pieces, position = [], 0
    for row, nth in zip(rows, serial, strict=True):
        begin = int(ends[row - 1]) + 1 if row else 0
        end = int(ends[row])  # the newline
        line = data[begin:end]
        pieces += [data[position:begin], line[: line.rfind(b",")] if nth % 2 == 0 else line + b","]
        position = end
    pieces.append(data[position:])
    return b"".join(pieces)


def json_lines(frame: pl.DataFrame) -> pl.Series:
    """One JSON object per row: strings quoted (escaped where needed), numbers bare, null fields left out."""
    fields = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            if frame[name].str.contains(r'["\\]').any():
                col = col.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
            fields.append(pl.concat_str([pl.lit(f'"{name}":"'), col, pl.lit('"')]))
        else:
            fields.append(pl.concat_str([pl.lit(f'"{name}":'), col.cast(pl.String)]))
    body = pl.concat_str(fields, separator=",", ignore_nulls=True)
    return frame.select(pl.concat_str([pl.lit("{"), body, pl.lit("}")]).alias("line")).to_series()


def write_jsonl(rng: np.random.Generator, frame: pl.DataFrame, path: Path, broken: np.ndarray) -> int:
    """Write `frame` as JSON lines, truncating the rows at `broken` and replaying a few; returns lines written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = frame.height
    cut = rng.uniform(0.2, 0.9, len(broken))
    replays = np.sort(rng.choice(n, min(n, max(2, int(n * REPLAY_SHARE))), replace=False)) if n else np.zeros(0, int)
    with path.open("wb") as fh:
        for start in range(0, n, BLOCK_ROWS):
            lines = json_lines(frame.slice(start, BLOCK_ROWS))
            hit = np.flatnonzero((broken >= start) & (broken < start + BLOCK_ROWS))
            if len(hit):
                rows = broken[hit] - start
                whole = lines.gather(rows)
                keep = pl.Series((whole.str.len_chars().to_numpy() * cut[hit]).astype(np.int64))
                lines = lines.scatter(rows, pl.select(pl.lit(whole).str.slice(0, pl.lit(keep))).to_series())
            lines.to_frame().write_csv(fh, include_header=False, quote_style="never")
        # Replays: the same event sent again, arriving after everything else.
        if len(replays):
            json_lines(frame[replays]).to_frame().write_csv(fh, include_header=False, quote_style="never")
    return n + len(replays)


def write_parquet(frame: pl.DataFrame, path: Path) -> int:
    """Write `frame` as Parquet (zstd); returns rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd", statistics=False)
    return frame.height
