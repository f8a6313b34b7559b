"""A Dagster step that finds the warehouse held by another process (the CLI, a notebook) waits in
line and then runs, instead of failing the run (the event run that met `attiva apply`'s lock)."""

from __future__ import annotations

import duckdb
import pytest

from tests.test_warehouse_sharing import Holder

pytestmark = pytest.mark.xdist_group("orchestration")


def test_a_dagster_step_waits_for_a_process_holding_the_warehouse(dbt_manifest, tmp_path, monkeypatch):
    import dagster as dg

    from activations import warehouse
    from orchestration.defs.report import LEDGER_KEY, activation_tables
    from orchestration.defs.resources import Warehouse

    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    said: list[str] = []
    with Holder(path) as holder:
        def release_once_waiting(message: str) -> None:
            said.append(message)
            holder.release()  # the step is now in line: let it in

        monkeypatch.setattr(warehouse, "_say", release_once_waiting)
        result = dg.materialize([activation_tables], resources={"warehouse": Warehouse(path=str(path))},
                                selection=[LEDGER_KEY], raise_on_error=False)
    assert result.success
    assert len(said) == 1 and f"held by PID {holder.proc.pid}" in said[0]
    [event] = result.get_asset_materialization_events()
    assert event.asset_key == LEDGER_KEY
