"""The campaign pages read the measurement the last run's report kept (schema `measured`): fast, and
saying as of when; once messages changed since, they say so; `?live=1` computes from the views now."""

from __future__ import annotations

import shutil
from datetime import datetime

import duckdb
import pytest

from activations.report import snapshots, write_report
from activations.serve.app import running_server
from activations.studio.app import Studio, create_app
from tests.studio.conftest import PROMOTION, SECRET, Visitor, text_of


@pytest.fixture
def kept(studio: Studio, tmp_path):
    """A copy of the test warehouse whose report kept the measurement; a console on it, as a marketer."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(studio.warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        write_report(con, tmp_path / "report.html", keep_measurement=True)
    with running_server(create_app(Studio(studio.users_path, warehouse), SECRET)) as url:
        visitor = Visitor(url)
        visitor.log_in("mara")
        yield warehouse, visitor


def measurement(page: str) -> str:
    """The report's sections on a campaign's page (performance, uplift, A/B test), as text."""
    return text_of(page.split('<div class="report">')[1].split("</main>")[0])


def test_the_pages_read_the_kept_measurement_and_say_when_it_was_taken(kept):
    warehouse, marketer = kept
    with duckdb.connect(str(warehouse), read_only=True) as con:
        snapshot = snapshots.latest(con)
        assert snapshot is not None and not snapshot.ledger_changed_since
        assert (con.execute("select * from measured.campaign_uplift order by all").fetchall()
                == con.execute("select * from measurement.campaign_uplift order by all").fetchall())
    listing = marketer.get("/campaigns").text
    assert f"Measured at {snapshot.taken_at:%Y-%m-%d %H:%M} UTC, by the report of the last run." in text_of(listing)
    page = marketer.get(f"/campaigns/{PROMOTION}").text
    assert "by the report of the last run" in text_of(page) and "Measure now" in text_of(page)
    before = measurement(page)

    # Messages change after the report: the pages keep the kept numbers and say so; live, the views' numbers.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update activation.message_ledger set state = 'held_out', updated_at = ? "
                    "where campaign = ? and state = 'sent'", [datetime(2030, 1, 1), PROMOTION])
    listing = marketer.get("/campaigns").text
    assert "messages were planned, sent or settled since, and are not counted yet" in text_of(listing)
    assert measurement(marketer.get(f"/campaigns/{PROMOTION}").text) == before  # as the report measured it
    live = marketer.get(f"/campaigns/{PROMOTION}?live=1").text
    assert "Measured now, from the measurement views." in text_of(live) and "Measure now" not in text_of(live)
    assert measurement(live) != before  # the sends it no longer has are gone from the live numbers


def test_without_a_kept_copy_the_pages_measure_from_the_views(as_marketer):
    page = text_of(as_marketer.get("/campaigns").text)
    assert "Measured now, from the measurement views (no report of a run has kept a copy yet)." in page
