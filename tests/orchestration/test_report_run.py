"""The report a whole Dagster run writes (as `make demo`): engagement fed back, every section there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.measurement.test_report import assert_no_empty_chart

# The `built` run is the orchestration group's: one full materialization shared by every test that reads it.
pytestmark = pytest.mark.xdist_group("orchestration")


def test_one_run_sends_feeds_engagement_back_and_reports_it(built):
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
