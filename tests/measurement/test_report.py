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


def test_the_report_from_data_has_every_section_with_charts(measured_warehouse, tmp_path, capsys):
    path, _ = measured_warehouse
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--warehouse", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<style>" in page
    for anchor, body in _sections(page).items():
        assert "No data yet" not in body, anchor
        charts = re.findall(r"<svg.*?</svg>", body, re.S)
        assert charts, f"{anchor} has no chart"
        for chart in charts:
            assert "<title>" in chart  # every chart has a title ...
            assert chart.count("<text") >= 3  # ... and axis labels besides it
            assert re.search(r"<(circle|rect|polyline)", chart), f"{anchor}: a chart with nothing drawn"
    assert "abandoned_cart" in _sections(page)["campaigns"]
    assert "too small to say" in _sections(page)["uplift"]
    assert "champions_to_meta (meta)" in _sections(page)["audiences"]


def test_an_empty_warehouse_says_no_data_yet_instead_of_drawing(handcrafted_warehouse, tmp_path):
    path = copy_warehouse(handcrafted_warehouse, tmp_path)
    with duckdb.connect(str(path), read_only=True) as con:
        out = write_report(con, tmp_path / "report.html")
    sections = _sections(Path(out).read_text(encoding="utf-8"))
    for anchor in ("campaigns", "uplift", "audiences", "sync-health"):
        assert "No data yet" in sections[anchor] and "<svg" not in sections[anchor], anchor
    assert "<svg" in sections["funnel"]  # the handcrafted CRM has leads


def test_a_warehouse_without_measurement_still_gets_a_report(tmp_path):
    with duckdb.connect(str(tmp_path / "bare.duckdb")) as con:
        out = write_report(con, tmp_path / "report.html")
    page = Path(out).read_text(encoding="utf-8")
    assert page.count("No data yet") == len(SECTIONS)
    assert "Not built yet in this warehouse" in page
