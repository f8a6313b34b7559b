"""The warehouse the incremental and social tests share: their new landing files, each module's `land`, all
loaded on top of the handcrafted warehouse at once, then built incrementally and rebuilt in full
(tests/dbt/on_top.py). Two dbt builds for the three modules instead of two each: 90 s of `make test`."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.dbt.on_top import build_on_top

# Each lands files no other touches, about people no other's assertions name.
ON_TOP = ("tests.dbt.test_incremental", "tests.dbt.test_social_leads", "tests.dbt.test_social_interactions")


@pytest.fixture(scope="session")
def on_top(handcrafted_warehouse: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(incremental, rebuilt): the handcrafted warehouse with every ON_TOP module's files landed and built
    incrementally; a copy of it rebuilt with --full-refresh."""
    root = tmp_path_factory.mktemp("on_top")
    for module in ON_TOP:
        importlib.import_module(module).land(root / "landing")
    incremental, rebuilt, report = build_on_top(handcrafted_warehouse, root / "landing", root)
    assert not report.rows_quarantined, str(report)
    return incremental, rebuilt
