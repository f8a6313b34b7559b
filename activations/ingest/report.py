"""What one ingestion did: per file, per row count, and the first problems found."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# A file's outcome in a report; the ledger only keeps loaded, failed and skipped.
LOADED = "loaded"  # new file, rows inserted
REPLACED = "replaced"  # a file loaded before changed: its old rows were replaced
UNCHANGED = "unchanged"  # already loaded, same content: nothing to do
SKIPPED = "skipped"  # not a source file or an unknown type
FAILED = "failed"  # could not be read at all: nothing loaded from it


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" if self.line is not None else f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class FileResult:
    file: str
    source: str | None
    format: str | None
    status: str
    rows_loaded: int = 0
    rows_quarantined: int = 0  # quarantined records (a record may have several problems)
    error: str | None = None
    problems: tuple[Problem, ...] = ()  # the first few quarantine reasons


@dataclass
class IngestReport:
    ingested_at: datetime
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, *statuses: str) -> list[FileResult]:
        return [f for f in self.files if f.status in statuses]

    @property
    def loaded_files(self) -> list[FileResult]:
        """Files whose rows were inserted by this load, new or replaced."""
        return self._with(LOADED, REPLACED)

    @property
    def failed_files(self) -> list[FileResult]:
        """Files that could not be read at all; `attiva ingest` exits 1 while there are any."""
        return self._with(FAILED)

    @property
    def skipped_files(self) -> list[FileResult]:
        return self._with(SKIPPED)

    @property
    def unchanged_files(self) -> list[FileResult]:
        return self._with(UNCHANGED)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def problems(self) -> list[Problem]:
        """The first few quarantine problems of each file (all of them are in raw.quarantine)."""
        return [p for f in self.files for p in f.problems]

    def __str__(self) -> str:
        replaced = len(self._with(REPLACED))
        lines = [
            f"Ingested {len(self.loaded_files)} file(s)"
            + (f" ({replaced} replaced)" if replaced else "")
            + f" in {self.seconds:.1f}s: {self.rows_loaded:,} rows loaded, {self.rows_quarantined:,} quarantined; "
            f"{len(self.unchanged_files)} unchanged, {len(self.skipped_files)} skipped, "
            f"{len(self.failed_files)} failed."
        ]
        if self.failed_files:
            lines.append("Failed (nothing loaded from these):")
            lines += [f"  {f.file}: {f.error}" for f in self.failed_files]
        if self.skipped_files:
            lines.append("Skipped:")
            lines += [f"  {f.file}: {f.error}" for f in self.skipped_files]
        if self.rows_quarantined:
            shown = self.problems[:5]
            lines.append(f"Quarantined (first {len(shown)} problems; all are in raw.quarantine):")
            lines += [f"  {p}" for p in shown]
        return "\n".join(lines)
