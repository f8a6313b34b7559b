"""The Dagster asset `serving/store`: downstream of the marts and audiences, publishes a snapshot."""

from __future__ import annotations

from tests.orchestration.conftest import dbt_manifest  # noqa: F401  (the fixture the definitions need)
from tests.serve.conftest import MARIO


def test_the_asset_follows_the_marts_and_audiences_and_publishes_a_snapshot(dbt_manifest, consented_warehouse,  # noqa: F811
                                                                             tmp_path, monkeypatch):
    import dagster as dg

    from activations.serve.store import ServingStore
    from orchestration.defs.resources import Warehouse
    from orchestration.defs.serving import SERVING_KEY, serving_store

    deps = {k.to_user_string() for k in serving_store.asset_deps[SERVING_KEY]}
    assert {"marts/customers", "marts/customer_identifiers", "marts/customer_recommendations",
            "audiences/aud_champions"} <= deps
    assert serving_store.op.pool == "warehouse"

    serving = tmp_path / "serving"
    monkeypatch.setenv("ATTIVA_SERVING", str(serving))
    result = dg.materialize([serving_store], resources={"warehouse": Warehouse(path=str(consented_warehouse))})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["customers"].value == 14 and meta["build_seconds"].value >= 0
    assert meta["snapshot_path"].value.startswith(str(serving))
    snapshot = ServingStore(serving).snapshot()
    assert snapshot is not None and snapshot.resolve("device_id", "D1") == (MARIO, 1)
