"""File export: each batch becomes one CSV or Parquet file in a folder (no HTTP).

Files are named `<instance>__<operation>__<run>__<seq>.<ext>` and written to a
temporary name first, then renamed into place, so a reader polling the folder
never sees half a file. A relative folder is under the data directory
(`ATTIVA_DATA`). Nothing limits the pace, so the capabilities declare no rate.
"""

from __future__ import annotations

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
            needs_destination_id_for_remove=False,
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
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.folder)
            os.close(handle)
            try:
                if self.format == "parquet":
                    out.write_parquet(temp_name)
                else:
                    neutralize_formulas(out).write_csv(temp_name)  # opened in spreadsheets: see csv_cells
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # A full disk or a vanished mount may clear; the engine retries with back-off.
            raise RetryableError(
                f"file_export: cannot write {target.name}: {exc.strerror or type(exc).__name__}"
            ) from None
        return [RowResult(True, None, None, target.name)] * batch.height

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"FileExportDestination(name={self.name!r}, folder={str(self.folder)!r})"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80]
