"""Debian's chromium driven by Playwright, for the tests that need a real browser (the storefront, the
console). Without /usr/bin/chromium or Playwright they skip and say why (`bash .ci/system-packages`
installs chromium); under ATTIVA_REQUIRE_SYSTEM=1 (CI) they fail instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# No network beyond the page under test, no GPU, no first-run or sync machinery: a quiet, hermetic browser.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"needs Debian's chromium at {CHROMIUM} (`bash .ci/system-packages` installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs Playwright for Python (pip install -e '.[dev]'; never `playwright install`)"
    return None


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    reason = _missing()
    if reason:
        if os.environ.get("ATTIVA_REQUIRE_SYSTEM") == "1":
            pytest.fail(f"ATTIVA_REQUIRE_SYSTEM=1 and the browser test {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver
