"""The demo storefront page in a real headless browser (Debian's chromium driven by Playwright), served
by the API over loopback with its public browser key: a known visitor, signed in (the demo's sign-in
stands in for the shop's backend signing an identity token) or by device id, sees their suggestions
and the promotion on their favourite; an unknown one and one without profiling consent see the same
generic content; the page's events reach the landing folder in the format ingestion reads, trusted
only once signed.

Without /usr/bin/chromium the tests skip and say why (`bash .ci/system-packages` installs it); under
ATTIVA_REQUIRE_SYSTEM=1 (CI) they fail instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from activations.ingest import load_landing
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.serve.conftest import NOW

pytestmark = pytest.mark.browser

class Storefront:
    """One visitor's browser (a fresh profile) on the demo page."""

    def __init__(self, driver, base_url: str, profile: Path):
        self.context = driver.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        # The page stamps events with its own clock; pin it to the server's "now" (the warehouse's as_of).
        self.context.clock.set_system_time(NOW)
        self.page = self.context.new_page()
        self.errors: list[str] = []  # uncaught exceptions in the page's script
        self.failed: list[tuple[int, str]] = []  # answers >= 400 the page received (status, path)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(
            (r.status, r.url.removeprefix(base_url))))
        self.base_url = base_url
        self.open()

    def open(self) -> None:
        self.page.goto(self.base_url + "/")
        self.page.evaluate("window.attivaReady")  # the page_view was answered

    def identify(self, id_type: str, value: str) -> None:
        self.page.select_option("#id-type", id_type)
        self.page.fill("#id-value", value)
        self.page.click("button[type=submit]")
        self.page.wait_for_function("document.getElementById('greeting').dataset.state !== 'anonymous'")

    def shown(self) -> dict:
        page = self.page
        return {
            "state": page.get_attribute("#greeting", "data-state"),
            "greeting": page.inner_text("#greeting"),
            "promotion_visible": page.is_visible("#promotion"),
            "promotions": page.eval_on_selector_all("#promotion .card", "cs => cs.map(c => c.dataset.productId)"),
            "promotion_text": page.inner_text("#promotion") if page.is_visible("#promotion") else "",
            "title": page.inner_text("#products-title"),
            "products": page.eval_on_selector_all("#products .card", "cs => cs.map(c => c.dataset.productId)"),
            "products_text": page.inner_text("#products"),
            "device_id": page.evaluate("localStorage.getItem('attiva_device_id')"),
        }

    def add_to_cart(self, selector: str) -> None:
        before = sum(line.startswith("add_to_cart") for line in self.log())
        self.page.click(f"{selector} .cart")
        # The page logs an event once the API answered it (written to the landing folder by then).
        self.page.wait_for_function("n => document.getElementById('log').textContent.split('add_to_cart').length > n",
                                    arg=before + 1)

    def log(self) -> list[str]:
        return list(reversed(self.page.inner_text("#log").strip().splitlines()))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(playwright_driver, api, tmp_path) -> Iterator[Storefront]:
    store = Storefront(playwright_driver, api.base_url, tmp_path / "chromium-profile")
    yield store
    store.close()
    assert not store.errors, f"the page logged errors: {store.errors}"


def landed(landing: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(landing.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def test_a_known_visitor_sees_suggestions_and_the_promotion_and_events_land(visitor, landing, tmp_path):
    visitor.identify("email", " Paola.Sala@Libero.it")
    shown = visitor.shown()
    assert shown["state"] == "personalized" and shown["greeting"].startswith("Ciao Paola")
    assert shown["promotion_visible"] and shown["promotions"] == ["P1"]  # her favourite, on promotion
    assert "€" in shown["promotion_text"] and "%" in shown["promotion_text"]
    assert shown["title"] == "Recommended for you" and shown["products"] == ["P3"]
    assert "Tazza Espresso" in shown["products_text"]
    assert visitor.failed == []

    visitor.add_to_cart("#promotion .card")
    assert [line.split(" ")[0] for line in visitor.log()] == ["page_view", "identify", "add_to_cart"]
    assert all("-> 200 accepted" in line for line in visitor.log()), visitor.log()
    visitor.open()  # a second page view: the same browser keeps its device id
    events = landed(landing)
    assert [e["event_type"] for e in events] == ["page_view", "identify", "add_to_cart", "page_view"]
    assert {e["anonymous_id"] for e in events} == {shown["device_id"]}
    assert events[1]["email"] == "Paola.Sala@Libero.it"  # from her signed token, not typed by the page
    assert [e["trust"] for e in events] == ["browser", "signed", "signed", "browser"]
    assert events[2]["product_id"] == "P1" and events[2]["quantity"] == 1

    # Ingestion reads the page's files like any other events file.
    warehouse = tmp_path / "ingested.duckdb"
    report = load_landing(landing, warehouse)
    assert not report.failed_files and not report.rows_quarantined, str(report)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select event_type, anonymous_id, product_id, quantity, occurred_at, trust from raw.events "
                           "order by occurred_at, event_type").fetchall()
    assert sorted(r[0] for r in rows) == ["add_to_cart", "identify", "page_view", "page_view"]
    assert ("add_to_cart", shown["device_id"], "P1", 1, "signed") in [r[:4] + r[5:] for r in rows]
    assert all(abs((r[4] - NOW.replace(tzinfo=None)).total_seconds()) < 600 for r in rows)


@pytest.mark.parametrize("id_type, value", [
    ("email", "nobody@example.it"),
    ("email", "laura.m@example.it"),  # no profiling consent: to the page's key, the same as unknown
    ("device_id", "NOPE"),
])
def test_others_see_generic_content(visitor, landing, id_type, value):
    visitor.identify(id_type, value)
    shown = visitor.shown()
    assert shown["state"] == "generic" and shown["greeting"] == "Welcome! Have a look around."
    assert not shown["promotion_visible"] and shown["promotions"] == [] and shown["products"] == []
    assert shown["title"] == "Our products"
    assert visitor.failed == []
    assert [e["event_type"] for e in landed(landing)] == ["page_view", "identify"]


def test_a_device_id_identifies_a_visitor_too(visitor):
    visitor.identify("device_id", "D1")
    shown = visitor.shown()
    assert shown["state"] == "personalized" and shown["greeting"].startswith("Ciao Mario")
    assert shown["promotions"] == ["P1"]


def test_the_page_shows_the_visitors_in_app_message_and_reports_what_they_did(visitor, api, serving, landing):
    from activations.messaging.inbox import INBOX_FILE, InAppMessage, Inbox, stamp
    from tests.serve.conftest import MARIO, PAOLA

    inbox = Inbox(serving / INBOX_FILE)
    inbox.put([InAppMessage(f"banner.{who}.1@attiva", who, "favourite_on_site", 1, f"Offerta per {who}",
                            "<b>Moka</b> a -20%", api.base_url + "/#offerta", 50, stamp(NOW), stamp(NOW + timedelta(days=1)))
               for who in (PAOLA, MARIO)])
    inbox.close()
    visitor.identify("email", "paola.sala@libero.it")
    visitor.page.evaluate("window.attivaMessages")  # shown, and its message_displayed answered
    banners = visitor.page.eval_on_selector_all("#messages .message", "cs => cs.map(c => c.dataset.messageId)")
    assert banners == [f"banner.{PAOLA}.1@attiva"]  # hers only, never Mario's
    assert visitor.page.inner_text("#messages strong") == f"Offerta per {PAOLA}"
    assert "<b>Moka</b>" in visitor.page.inner_text("#messages p")  # text, never markup

    with visitor.context.expect_page() as opened:
        visitor.page.click("#messages a")
    opened.value.close()
    visitor.page.wait_for_function("document.getElementById('log').textContent.includes('message_clicked')")
    visitor.page.click("#messages .dismiss")
    visitor.page.wait_for_function("document.getElementById('log').textContent.includes('message_dismissed')")
    assert visitor.page.eval_on_selector_all("#messages .message", "cs => cs.length") == 0
    kinds = [e["event_type"] for e in landed(landing) if e["event_type"].startswith("message_")]
    assert sorted(kinds) == ["message_clicked", "message_dismissed", "message_displayed"]
    assert {e["message_id"] for e in landed(landing) if e.get("message_id")} == {f"banner.{PAOLA}.1@attiva"}
    assert {e["trust"] for e in landed(landing) if e.get("message_id")} == {"signed"}

    visitor.open()  # dismissed: not shown again
    visitor.identify("email", "paola.sala@libero.it")
    visitor.page.evaluate("window.attivaMessages")
    assert visitor.page.eval_on_selector_all("#messages .message", "cs => cs.length") == 0
