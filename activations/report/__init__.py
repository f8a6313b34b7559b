"""The marketer's report: one self-contained HTML file built from the measurement models.

data.py reads the warehouse, html.py and svg.py draw the page; `attiva report` and the
Dagster asset `report/marketing_report` call :func:`write_report`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from activations.report import data as report_data
from activations.report import snapshots
from activations.report.html import render

__all__ = ["default_report_path", "write_report"]


def default_report_path() -> Path:
    """Where the report goes by default: <ATTIVA_DATA>/report/attiva-report.html."""
    from activations import settings

    return settings.data_dir() / "report" / "attiva-report.html"


def write_report(con, out: Path | str | None = None, *, as_of: datetime | None = None,
                 keep_measurement: bool = False) -> Path:
    """Read every section's data from an open warehouse connection and write the page; returns its path.
    `keep_measurement` (a connection that writes): first copy the campaign measurement into schema
    `measured` for the console (report/snapshots.py), and read the page's campaign sections from it."""
    path = Path(out) if out is not None else default_report_path()
    copied = snapshots.take(con) if keep_measurement else []
    page = render(report_data.load(con, generated_at=(as_of or datetime.now(UTC)).astimezone(UTC),
                                   campaigns_from=snapshots.SCHEMA if copied else "measurement"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path.resolve()
