"""New landing files on top of the handcrafted warehouse, built the two ways users build: incrementally, then
in full on a copy; and the queries the tests that do so ask of either."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from activations.build import build_warehouse
from activations.ingest import load_landing
from tests.conftest import HANDCRAFTED_AS_OF


def build_on_top(handcrafted_warehouse: Path, landing: Path, root: Path):
    """(incremental, rebuilt, ingest report): `landing` loaded into a copy of the handcrafted warehouse and
    built incrementally; that warehouse copied and rebuilt in full."""
    incremental = root / "incremental.duckdb"
    shutil.copy(handcrafted_warehouse, incremental)
    report = load_landing(landing, incremental)
    assert not report.failed_files, str(report)
    result = build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=incremental)
    assert result.ok, str(result)
    rebuilt = root / "rebuilt.duckdb"
    shutil.copy(incremental, rebuilt)
    result = build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=rebuilt, full_refresh=True)
    assert result.ok, str(result)
    return incremental, rebuilt, report


def query(warehouse: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def owner(warehouse: Path, kind: str, value: str) -> set[str]:
    """The customers holding an identifier (marts.customer_identifiers)."""
    return {r[0] for r in query(warehouse, "select customer_id from marts.customer_identifiers "
                                           "where identifier_type = ? and identifier_value = ?", kind, value)}


def forgotten(warehouse: Path, tmp_path: Path, who: str) -> Path:
    """A copy of `warehouse` after `attiva forget who` (no destinations to ask)."""
    from activations.forget import forget

    copy = tmp_path / "forget.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        forget(con, who, destinations={})
    return copy
