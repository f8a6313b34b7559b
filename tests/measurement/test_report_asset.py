"""The Dagster side: `report/marketing_report` runs after the measurement models and every send,
and links the report file in its metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.measurement.test_report import assert_no_empty_chart
from tests.orchestration.conftest import built, dbt_manifest, defs, pinned_as_of, sandbox  # noqa: F401 - fixtures

pytestmark = pytest.mark.xdist_group("orchestration")


def test_the_report_follows_measurement_and_every_send(defs):  # noqa: F811
    import dagster as dg

    graph = defs.resolve_asset_graph()
    report = dg.AssetKey(["report", "marketing_report"])
    parents = set(graph.get(report).parent_keys)
    measurement = {k for k in graph.get_all_asset_keys() if k.path[0] == "measurement"}
    assert {"campaign_performance", "campaign_uplift", "lead_funnel", "sync_health"} <= {k.path[1] for k in measurement}
    assert measurement <= parents
    assert any(k.path[0] == "messages" for k in parents) and any(k.path[0] == "syncs" for k in parents)
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


def test_one_run_sends_feeds_engagement_back_and_reports_it(built):  # noqa: F811
    """The whole graph as one Dagster run (as `make demo`): what recipients did reaches the warehouse
    with no command run, and the report the run writes shows it, every section there, no empty chart."""
    import duckdb

    materialized = {e.asset_key.to_user_string(): e.materialization.metadata
                    for e in built.result.get_asset_materialization_events()}
    feedback = materialized["feedback/engagement_events"]
    assert feedback["events_delivered"].value > 0 and feedback["rows_loaded"].value == feedback["events"].value
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        emailed = {r[0] for r in con.execute("""select message_id from activation.message_ledger
                                                where state = 'sent' and channel in ('email', 'esp')""").fetchall()}
        reported = {r[0] for r in con.execute("""select message_id from measurement.message_outcomes
                                                 where delivered or bounced""").fetchall()}
        totals = con.execute("select sum(sent), sum(delivered), sum(opened) from measurement.campaign_performance"
                             ).fetchone()
    assert emailed and reported == emailed  # every email sent has its delivery (or bounce) reported
    assert totals[1] > 0 and totals[2] > 0
    page = Path(materialized["report/marketing_report"]["path"].value).read_text(encoding="utf-8")
    sections = assert_no_empty_chart(page)
    assert "What recipients did" in sections["campaigns"] and ", delivered, not opened: " in sections["campaigns"]
