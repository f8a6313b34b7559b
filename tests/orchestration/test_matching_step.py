"""The matching step in Dagster: when scoring fails, it says so with a failed check and the links
stay as they were, so the rest of the build (identity, marts, audiences) is not its hostage."""

from __future__ import annotations

import duckdb


def test_a_failed_matching_step_fails_its_check_and_leaves_the_run_going(dbt_manifest, tmp_path):
    import dagster as dg

    from activations.identity import links
    from orchestration.defs.matching import RAN, matching_links
    from orchestration.defs.resources import Warehouse

    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:  # a warehouse whose staging was never built: nothing to read
        links.ensure_tables(con)
        con.execute("insert into matching.links (pair_id, status) values ('pair_kept', 'accepted')")
    result = dg.materialize([matching_links], resources={"warehouse": Warehouse(path=str(warehouse))},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == RAN and not evaluation.passed
    assert "build staging first" in evaluation.metadata["error"].value
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select pair_id, status from matching.links").fetchall() == [("pair_kept", "accepted")]
