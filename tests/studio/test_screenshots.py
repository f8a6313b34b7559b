"""Every page of the console in chromium, as a marketer and (Mario's page) as a viewer: each answers 200
with its heading and the build it shows, and its picture is taken. docs/studio.md shows these pictures:
`ATTIVA_SCREENSHOTS=docs/studio .venv/bin/python -m pytest tests/studio/test_screenshots.py` takes them again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.studio.conftest import MARIO, MARIOS_OCCURRENCE, PROMOTION
from tests.studio.test_browser import chromium, log_in  # noqa: F401 - the browser fixture, shared

pytestmark = pytest.mark.browser

# (picture, path, heading): what each page must say.
PAGES = [
    ("audiences", "/audiences", "Audiences"),
    ("audience", "/audiences/aud_champions", "aud_champions"),
    ("customers", "/customers", "Customers"),
    ("customer", f"/customers/{MARIO}", f"Customer {MARIO}"),
    ("campaigns", "/campaigns", "Campaigns"),
    ("campaign", f"/campaigns/{PROMOTION}?occurrence={MARIOS_OCCURRENCE}", PROMOTION),
]


def test_every_page_renders_in_chromium_and_is_pictured(chromium, console, tmp_path):  # noqa: F811
    folder = Path(os.environ.get("ATTIVA_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    context, page = log_in(chromium, console, "mara")
    page.set_viewport_size({"width": 1280, "height": 900})
    for picture, path, heading in PAGES:
        answer = page.goto(console + path)
        assert answer.status == 200, (path, answer.status)
        assert heading in page.inner_text("h1") and "Data as of" in page.inner_text("body"), path
        page.screenshot(path=str(folder / f"{picture}.png"), full_page=True)

    page.goto(console + "/builder")
    page.select_option("select[name=c0_choice]", "trait:rfm_segment")
    page.select_option("select[name=c0_op]", "in")
    page.fill("input[name=c0_value]", "champion, loyal")
    page.select_option("select[name=c1_choice]", "consent:email_marketable")
    expect(page.locator("#estimate-count")).not_to_have_text("–")  # polled: the page's CSP forbids eval
    page.screenshot(path=str(folder / "builder.png"), full_page=True)
    context.close()

    context, page = log_in(chromium, console, "vera")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(console + f"/customers/{MARIO}")
    assert "As a viewer you see no personal data" in page.inner_text("body")
    page.screenshot(path=str(folder / "customer-as-viewer.png"), full_page=True)
    context.close()
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(
        [f"{p}.png" for p, _, _ in PAGES] + ["builder.png", "customer-as-viewer.png"])
