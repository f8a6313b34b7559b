"""The demo storefront page: its own script, run by Node against a minimal DOM over real HTTP,
shows a known visitor's suggestions and promotion, generic content otherwise, and its events
reach the landing folder. (No browser here: Debian's chromium + Playwright would replace the
minimal DOM where they are installed.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serve.conftest import NOW

HARNESS = Path(__file__).with_name("storefront_harness.js")
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")


def visit(base_url: str, id_type: str, value: str) -> dict:
    proc = subprocess.run(["node", str(HARNESS), base_url, id_type, value, NOW.isoformat()], capture_output=True,
                          text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def landed(landing: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(landing.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def test_a_known_visitor_sees_suggestions_and_the_promotion_and_events_land(api, landing):
    shown = visit(api.base_url, "email", " Paola.Sala@Libero.it")
    assert shown["state"] == "personalized" and shown["greeting"].startswith("Ciao Paola")
    assert shown["promotions"] == ["P1"] and not shown["promotion_hidden"]
    assert shown["title"] == "Recommended for you" and shown["products"] == ["P3"]
    assert [line.split(" ")[0] for line in shown["log"]] == ["page_view", "identify", "add_to_cart"]
    assert all("-> 200 accepted" in line for line in shown["log"])

    events = landed(landing)
    assert [e["event_type"] for e in events] == ["page_view", "identify", "add_to_cart"]
    assert events[1]["email"] == "Paola.Sala@Libero.it"
    assert events[2]["product_id"] == "P1" and events[2]["quantity"] == 1
    assert {e["anonymous_id"] for e in events} == {shown["device_id"]}


@pytest.mark.parametrize("id_type, value, greeting", [
    ("email", "nobody@example.it", "don't know you yet"),
    ("email", "laura.m@example.it", "not allowed personalized suggestions"),  # no profiling consent
])
def test_others_see_generic_content(api, id_type, value, greeting):
    shown = visit(api.base_url, id_type, value)
    assert shown["state"] == "generic" and greeting in shown["greeting"]
    assert shown["promotion_hidden"] and shown["promotions"] == [] and shown["products"] == []


def test_a_device_id_identifies_a_visitor_too(api):
    shown = visit(api.base_url, "device_id", "D1")
    assert shown["state"] == "personalized" and shown["greeting"].startswith("Ciao Mario")
    assert shown["promotions"] == ["P1"]
