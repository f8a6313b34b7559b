"""`attiva report`: one self-contained HTML file with every section; a chart only where there is data."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from activations.cli import main
from activations.report import write_report
from activations.report.html import SECTIONS
from tests.measurement.conftest import copy_warehouse

pytestmark = pytest.mark.xdist_group("handcrafted")


def _sections(page: str) -> dict[str, str]:
    found = {}
    for anchor in SECTIONS:
        match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
        assert match, f"section {anchor} missing"
        found[anchor] = match.group(1)
    return found


def assert_no_empty_chart(page: str) -> dict[str, str]:
    """Every section is there; every chart has a title, axis labels and something drawn; a section
    without a chart says in words why. Returns the sections by id."""
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<style>" in page
    sections = _sections(page)
    for anchor, body in sections.items():
        charts = re.findall(r"<svg.*?</svg>", body, re.S)
        if not charts:
            assert "No data yet" in body or "Not enough data yet" in body, f"{anchor}: no chart and no reason"
        for chart in charts:
            assert "<title>" in chart  # every chart has a title ...
            assert chart.count("<text") >= 3  # ... and axis labels besides it
            assert re.search(r"<(circle|rect|polyline)", chart), f"{anchor}: a chart with nothing drawn"
    return sections


def test_the_report_from_data_has_every_section_with_charts(measured_warehouse, tmp_path, capsys):
    path, _ = measured_warehouse
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--warehouse", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    sections = assert_no_empty_chart(out.read_text(encoding="utf-8"))
    for anchor in ("campaigns", "audiences", "funnel", "sync-health"):
        assert "No data yet" not in sections[anchor] and "<svg" in sections[anchor], anchor
    campaigns = sections["campaigns"]
    assert "abandoned_cart" in campaigns and "What recipients did" in campaigns
    # the engagement chart stacks what recipients did: mario's cart email was clicked, franco's bounced
    assert re.search(r"abandoned_cart · 1, clicked: 1<", campaigns)
    assert re.search(r"abandoned_cart · 1, bounced: 1<", campaigns)
    # every customer is still within the attribution window: said in words, with the counts in the table
    assert "still within the attribution window" in sections["uplift"] and "Not enough data yet" in sections["uplift"]
    assert "waiting for the attribution window to close" in sections["uplift"]
    assert "<svg" not in sections["uplift"]
    # the A/B test is listed, each variant against the other; two opens are too few to chart
    assert "favourite_on_promotion_b" in sections["variants"] and "Not enough data yet" in sections["variants"]
    assert "champions_to_meta (meta)" in sections["audiences"]
    health = sections["sync-health"]
    assert "Match rate reported by the destination" in health and "61%–70%" in health  # Google's range
    assert re.search(r"<td>6</td><td>1</td><td>–</td></tr>", health)  # Meta: 6 received, 1 invalid, no match rate


def test_an_empty_warehouse_says_no_data_yet_instead_of_drawing(handcrafted_warehouse, tmp_path):
    path = copy_warehouse(handcrafted_warehouse, tmp_path)
    with duckdb.connect(str(path), read_only=True) as con:
        out = write_report(con, tmp_path / "report.html")
    sections = _sections(Path(out).read_text(encoding="utf-8"))
    for anchor in ("campaigns", "uplift", "audiences", "sync-health"):
        assert "No data yet" in sections[anchor] and "<svg" not in sections[anchor], anchor
    assert "<svg" in sections["funnel"]  # the handcrafted CRM has leads
    # Mario: a paid-search lead the CRM made a customer with no MQL or SQL date: a customer who skipped
    # a stage, not an MQL and SQL
    assert re.search(r'<td class="text">paid_search</td><td>1</td><td>0</td><td>0</td><td>1</td><td>1</td>',
                     sections["funnel"])


def test_a_warehouse_without_measurement_still_gets_a_report(tmp_path):
    with duckdb.connect(str(tmp_path / "bare.duckdb")) as con:
        out = write_report(con, tmp_path / "report.html")
    page = Path(out).read_text(encoding="utf-8")
    assert page.count("No data yet") == len(SECTIONS)
    assert "Not built yet in this warehouse" in page


def test_report_without_out_writes_the_default_file_not_the_landing_folder(tmp_path, monkeypatch, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()  # the landing folder exists, as after `attiva generate`
    monkeypatch.setenv("ATTIVA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ATTIVA_LANDING", str(landing))
    warehouse = tmp_path / "bare.duckdb"
    duckdb.connect(str(warehouse)).close()
    assert main(["report", "--warehouse", str(warehouse)]) == 0
    expected = tmp_path / "data" / "report" / "attiva-report.html"
    assert capsys.readouterr().out.strip() == str(expected.resolve())
    assert "<section" in expected.read_text(encoding="utf-8")
    assert list(landing.iterdir()) == []


def test_what_the_system_learned_shows_a_bandits_shares_moving_and_the_send_time_open_rates():
    from datetime import date

    from activations.report.data import ReportData
    from activations.report.html import predictions_section

    shares = {date(2026, 11, 1): (50, 50), date(2026, 11, 2): (30, 70), date(2026, 11, 3): (10, 90)}
    data = ReportData(
        allocations=[{"campaign": "win_back", "step": 1, "day": day, "variant": variant, "messages": n}
                     for day, split in shares.items() for variant, n in zip(("win_back_a", "win_back_b"), split, strict=True)],
        send_times=[{"timed_by": "as_soon_as_due", "delivered": 200, "opened": 50},
                    {"timed_by": "best_hour", "delivered": 100, "opened": 34}])
    section = predictions_section(data)
    assert "What the system learned" in section and "Allocations over time" in section
    assert "win_back · step 1: share of messages per variant" in section and "<polyline" in section
    assert re.search(r"2026-11-03</td><td>10.0%</td><td>90.0%</td><td>100</td>", section)
    assert "the customer&#x27;s best hour</td><td>100</td><td>34</td><td>34.0%</td>" in section
    assert "as soon as due</td><td>200</td><td>50</td><td>25.0%</td>" in section


def test_a_send_time_control_group_shows_what_the_best_hour_adds_with_its_interval():
    from activations.report.data import ReportData
    from activations.report.html import predictions_section
    from activations.report.intervals import rate_difference

    data = ReportData(
        send_times=[{"timed_by": "control", "delivered": 500, "opened": 175},
                    {"timed_by": "segment_hour", "delivered": 480, "opened": 240}],
        send_time_tests=[{"campaign": "win_back", "control": True, "delivered": 500, "opened": 175},
                         {"campaign": "win_back", "control": False, "delivered": 480, "opened": 240}])
    section = predictions_section(data)
    assert "What the best hour adds (randomized)" in section
    assert "as soon as due (control group)</td><td>500</td>" in section
    # 50.0 % - 35.0 %: Newcombe's interval, as campaign_uplift's.
    assert ('<td class="text">win_back</td><td>35.0% of 500</td><td>50.0% of 480</td><td>+15.0 pt</td>'
            "<td>+8.8 to +21.0 pt</td>") in section
    # Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339.
    _, low, high = rate_difference(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_a_chart_of_counts_has_whole_number_ticks():
    from activations.report.svg import nice_ticks

    # Two customers: 0, 1, 2, not 0, 0.5, 1, 1.5, 2 printed as "0, 0, 1, 2, 2".
    assert nice_ticks(0, 2, whole=True) == [0, 1, 2]
    assert nice_ticks(0, 13, whole=True) == [0, 5, 10, 15]
    assert nice_ticks(0, 2) == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_the_report_shows_the_path_customers_took_through_a_journey(handcrafted_warehouse, tmp_path):
    """measurement.journey_steps over the ledger: per step sent, skipped and why, suppressed, waiting."""
    from activations.messaging.ledger import ensure_ledger

    path = copy_warehouse(handcrafted_warehouse, tmp_path)
    rows = [(1, "email", "sent", None)] * 4 + [(1, "email", "suppressed", "no consent at send time")] + [
        (2, "sms", "sent", None), (2, "sms", "skipped", "branch not taken: opened"),
        (2, "sms", "skipped", "branch not taken: opened, bought"), (2, "sms", "planned", None)]
    with duckdb.connect(str(path)) as con:
        ensure_ledger(con)
        for n, (step, channel, state, reason) in enumerate(rows):
            con.execute("insert into activation.message_ledger (campaign, trigger_key, step, customer_id, channel, "
                        "template, state, reason, message_id) values ('win_back', ?, ?, 'c1', ?, 't', ?, ?, ?)",
                        [f"k{n}", step, channel, state, reason, f"m{n}"])
        page = Path(write_report(con, tmp_path / "report.html")).read_text(encoding="utf-8")
    campaigns = _sections(page)["campaigns"]
    assert "The path customers took through each journey" in campaigns
    assert re.search(r'<td class="text">win_back</td><td>2</td><td class="text">sms</td><td>4</td><td>1</td>'
                     r'<td>2</td><td class="text">2 opened, 1 bought</td><td>0</td><td>1</td><td>25.0%</td>',
                     campaigns), campaigns[-1500:]
