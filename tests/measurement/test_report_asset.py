"""The Dagster side: `report/marketing_report` runs after the measurement models and every send,
and links the report file in its metadata. (The report a whole Dagster run writes:
tests/orchestration/test_report_run.py, beside the other tests reading that one run.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.orchestration.conftest import dbt_manifest, defs  # noqa: F401 - fixtures

# Beside the other tests reading the handcrafted warehouse (measured_warehouse copies it), which that
# worker has built already; the definitions load in a few seconds.
pytestmark = pytest.mark.xdist_group("handcrafted")


def test_the_report_follows_measurement_and_every_message_not_the_syncs(defs):  # noqa: F811
    import dagster as dg

    graph = defs.resolve_asset_graph()
    report = dg.AssetKey(["report", "marketing_report"])
    parents = set(graph.get(report).parent_keys)
    measurement = {k for k in graph.get_all_asset_keys() if k.path[0] == "measurement"}
    assert {"campaign_performance", "campaign_uplift", "lead_funnel", "sync_health"} <= {k.path[1] for k in measurement}
    assert measurement <= parents
    # Not the syncs: one held back by its gate or failed would skip the report (tests/orchestration/test_blast_radius)
    assert any(k.path[0] == "messages" for k in parents) and not any(k.path[0] == "syncs" for k in parents)
    # Engagement comes back after every send, before the report.
    feedback = dg.AssetKey(["feedback", "engagement_events"])
    assert feedback in parents
    assert {k for k in graph.get(feedback).parent_keys} == {k for k in parents if k.path[0] == "messages"}
    outcomes = graph.get(dg.AssetKey(["measurement", "message_outcomes"]))
    assert dg.AssetKey(["activation", "message_ledger"]) in outcomes.parent_keys
    assert graph.get(dg.AssetKey(["activation", "message_ledger"])).is_materializable


def test_materializing_the_report_links_the_file(defs, measured_warehouse):  # noqa: F811
    import dagster as dg

    from orchestration.defs.report import activation_tables
    from orchestration.defs.resources import Warehouse

    path, _ = measured_warehouse
    report_def = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition)
                      and dg.AssetKey(["report", "marketing_report"]) in a.keys)
    result = dg.materialize([activation_tables, report_def], resources={"warehouse": Warehouse(path=str(path))})
    assert result.success
    materialized = {m.asset_key.to_user_string(): m.metadata
                    for m in (e.materialization for e in result.get_asset_materialization_events())}
    assert materialized["activation/message_ledger"]["rows"].value == 10  # conftest: HISTORY and VARIANTS
    linked = Path(materialized["report/marketing_report"]["path"].value)
    assert linked == path.parent / "report" / "attiva-report.html" and linked.exists()
    assert '<section id="uplift">' in linked.read_text(encoding="utf-8")
