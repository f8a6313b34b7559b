"""Session fixtures: small warehouses built once, through the real pipeline
(landing files -> ingestion -> dbt build) into real DuckDB files."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

# The real-browser fixture (Debian's chromium through Playwright) the storefront and console tests share.
pytest_plugins = ["tests.browser"]

FIXTURES = Path(__file__).parent / "fixtures"
HANDCRAFTED_AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def build_from_landing(landing: Path, warehouse: Path, as_of: datetime):
    from activations.build import build_warehouse
    from activations.ingest import load_landing

    report = load_landing(landing, warehouse)
    assert not report.failed_files, str(report)
    result = build_warehouse(as_of=as_of, warehouse=warehouse)
    assert result.ok, str(result)
    return report, result


@pytest.fixture(scope="session")
def handcrafted_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("handcrafted") / "landing"
    shutil.copytree(FIXTURES / "handcrafted", landing, ignore=shutil.ignore_patterns("README.md"))
    return landing


@pytest.fixture(scope="session")
def handcrafted_warehouse(handcrafted_landing: Path) -> Path:
    """The handcrafted people, ingested and built at as_of 2026-11-20 12:00 UTC."""
    warehouse = handcrafted_landing.parent / "warehouse.duckdb"
    build_from_landing(handcrafted_landing, warehouse, HANDCRAFTED_AS_OF)
    return warehouse
