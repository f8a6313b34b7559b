"""File export: each batch becomes one CSV or Parquet file in a folder (no HTTP).

Files are named `<instance>__<operation>__<run>__<seq>.<ext>` and written to a
temporary name first, then renamed into place, so a reader polling the folder
never sees half a file. A relative folder is under the data directory
(`ATTIVA_DATA`). Nothing limits the pace, so the capabilities declare no rate.

Erasure (`erase`) rewrites every file of the instance still in the folder without the erased rows
(matched by key or by any identifier value), and writes `<instance>__erase__<stamp>.csv` listing only the
SHA-256 of their keys (`key_sha256`), so a receiver that copied files away can find them too. No file
written after an erasure carries the person.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from activations import settings
from activations.destinations.base import (
    KEY_COLUMN,
    BatchPart,
    Capabilities,
    Operation,
    RetryableError,
    RowResult,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.csv_cells import neutralize_formulas

FORMATS = ("csv", "parquet")


class FileExportDestination:
    """Batches written as files to one folder."""

    type = "file_export"
    options = {
        "folder": Option(str, required=True, help="where files go; relative to the data directory"),
        "format": Option(str, default="csv", choices=FORMATS),
        "hashing": Option(str, choices=("sha256",), help="hash identifiers before writing (for ad-platform uploads)"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        self.config = config
        self.name = config.name
        self.format = config.get("format", "csv")
        folder = Path(config.require("folder")).expanduser()
        self.folder = folder if folder.is_absolute() else settings.data_dir() / folder
        self.capabilities = config.limited(self.platform_capabilities(config))
        self._run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=100_000,
            requests_per_window=None,
            window_seconds=None,
            max_concurrency=2,
            modes=frozenset({"upsert", "update", "insert", "mirror", "full_resync"}),
            identifiers=("email", "phone", "external_id"),
            hashing=config.get("hashing"),
            keyed_by_identifiers=False,  # rows travel with their key: the receiver knows them by it
            idempotent_writes=True,
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Write the batch as one file; every row is confirmed once the file is in place."""
        if batch.height == 0:
            return []
        if part is not None and part.run_id:
            run, seq = _safe(part.run_id), part.seq
        else:
            with self._lock:
                run, seq = self._run, next(self._counter)
        target = self.folder / f"{_safe(self.name)}__{operation}__{run}__{seq:06d}.{self.format}"
        # The sync's row key travels as `key`, like the webhook's; other bookkeeping columns stay behind.
        out = batch.select(
            [pl.col(c) for c in batch.columns if not c.startswith("_")]
            + ([pl.col(KEY_COLUMN).alias("key")] if KEY_COLUMN in batch.columns else [])
        )
        try:
            self._write(out, target, self.format)
        except OSError as exc:
            # A full disk or a vanished mount may clear; the engine retries with back-off.
            raise RetryableError(
                f"file_export: cannot write {target.name}: {exc.strerror or type(exc).__name__}"
            ) from None
        return [RowResult(True, None, None, target.name)] * batch.height

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Take the rows out of every exported file still in the folder; leave a notice of hashed keys."""
        if rows.height == 0:
            return []
        keys = {str(k) for k in rows[KEY_COLUMN].to_list() if k is not None} if KEY_COLUMN in rows.columns else set()
        values = {str(v) for kind in self.capabilities.identifiers if kind in rows.columns
                  for v in rows[kind].to_list() if v is not None}
        try:
            for path in sorted(self.folder.glob(f"{_safe(self.name)}__*.{self.format}")):
                if "__erase__" not in path.name:
                    self._scrub(path, keys, values)
            if keys:
                notice = pl.DataFrame({"key_sha256": sorted(hashlib.sha256(k.encode()).hexdigest() for k in keys)})
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                self._write(notice, self.folder / f"{_safe(self.name)}__erase__{stamp}.csv", "csv")
        except OSError as exc:
            raise RetryableError(f"file_export: cannot rewrite the exports: {exc.strerror or type(exc).__name__}") from None
        return [RowResult(True, None)] * rows.height

    def _scrub(self, path: Path, keys: set[str], values: set[str]) -> None:
        """Rewrite `path` without the rows whose key or identifier is erased (deleted when nothing is left)."""
        frame = pl.read_parquet(path) if self.format == "parquet" else pl.read_csv(path, infer_schema=False)
        erased = pl.lit(False)
        if "key" in frame.columns and keys:
            erased = erased | pl.col("key").cast(pl.String).is_in(list(keys))
        for kind in self.capabilities.identifiers:
            if kind in frame.columns and values:
                erased = erased | pl.col(kind).cast(pl.String).is_in(list(values)).fill_null(False)
        kept = frame.filter(~erased)
        if kept.height == frame.height:
            return
        if kept.height == 0:
            path.unlink()
        else:
            self._write(kept, path, self.format)

    def _write(self, frame: pl.DataFrame, target: Path, file_format: str) -> None:
        """Write to a temporary name, then rename: a reader never sees half a file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.folder)
        os.close(handle)
        try:
            if file_format == "parquet":
                frame.write_parquet(temp_name)
            else:
                neutralize_formulas(frame).write_csv(temp_name)  # opened in spreadsheets: see csv_cells
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"FileExportDestination(name={self.name!r}, folder={str(self.folder)!r})"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80]
