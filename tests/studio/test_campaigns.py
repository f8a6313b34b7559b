"""The campaign pages over real HTTP on the handcrafted warehouse: every declared campaign with its ledger
counts and uplift; one campaign's steps, variants and allocation, each step's email rendered by the
engine for a real occurrence and for the edge case; pause and resume recorded and honoured; a test send
through the configured SMTP channel landing in the sandbox's SMTP store, never in the ledger; and a
viewer who sees no email address, phone or name anywhere on them."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests

from activations.messaging import actions
from sandbox import running_sandbox
from tests.studio.conftest import LAURA, MARIO, MARIO_PII, MARIOS_OCCURRENCE, PROMOTION, Visitor, received, text_of


def ledger_rows(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select * from activation.message_ledger order by all").fetchall()


def previews(page_html: str) -> list[str]:
    """The emails the page renders, as their iframes carry them (srcdoc, unescaped)."""

    return [html.unescape(doc) for doc in re.findall(r'srcdoc="([^"]*)"', page_html)]


def test_the_campaigns_page_lists_every_declared_campaign_with_its_counts_and_uplift(as_viewer):
    page = as_viewer.get("/campaigns")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Data as of the build of" in text
    for name in ("abandoned_cart", "birthday", "favourite_on_promotion", "lead_nurture", "mql_handoff", "win_back"):
        assert f'data-campaign="{name}"' in page.text
    promotion = text_of(page.text.split(f'data-campaign="{PROMOTION}"')[1].split("</tr>")[0])
    assert promotion.startswith("> favourite_on_promotion active email 1 2 1 0 0")  # sent 2, held out 1
    assert "waiting for the attribution window to close" in promotion  # the report's own verdict
    assert 'id="uplift"' in page.text and "Uplift against the holdout" in text  # the report's section


def test_a_campaign_page_shows_its_steps_variants_allocation_and_the_reports_sections(as_marketer):
    page = as_marketer.get(f"/campaigns/{PROMOTION}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Data as of the build of" in text and "Active" in text
    steps = text_of(page.text.split('id="steps"')[1].split("</table>")[0])
    assert "1 0:00:00 favourite_on_promotion 50 % (thompson) 1 1 0 0 0" in steps
    assert "1 0:00:00 favourite_on_promotion_b 50 % (thompson) 1 0 0 0 0" in steps
    for section in ('id="campaigns"', 'id="uplift"', 'id="variants"'):
        assert section in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_each_steps_email_is_rendered_for_a_real_customer_and_for_the_edge_case(as_marketer):
    page = as_marketer.get(f"/campaigns/{PROMOTION}?occurrence={MARIOS_OCCURRENCE}")
    assert 'sandbox=""' in page.text and "<script" not in page.text
    # Both variants for Mario, then variant a for the edge case: no name, no recommendations.
    mario_a, mario_b, edge = previews(page.text)
    assert "Mario" in mario_a and "Mario" in mario_b and "Mario" not in edge
    assert "utm_campaign=favourite_on_promotion" in mario_a  # the engine's tracked links
    assert "token=test-send-unsubscribes-nobody" in mario_a
    subjects = [text_of(s) for s in page.text.split('class="subject"')[1:]]
    assert subjects[0] != subjects[1]  # the A/B test's two subject lines
    # Another occurrence: Laura's.
    laura = as_marketer.get(f"/campaigns/{PROMOTION}?occurrence={LAURA}:PR1")
    assert "Laura" in previews(laura.text)[0]


def test_an_sms_campaign_shows_its_text_as_it_will_be_sent(as_marketer):
    page = as_marketer.get("/campaigns/birthday_sms")
    assert page.status_code == 200 and 'class="sms"' in page.text and "srcdoc" not in page.text
    assert "STOP per annullare" in text_of(page.text.split('class="sms"')[1].split("</pre>")[0])


def test_a_viewer_sees_the_campaign_pages_with_no_email_phone_or_name(as_viewer):
    for path in ("/campaigns", f"/campaigns/{PROMOTION}?occurrence={MARIOS_OCCURRENCE}", "/campaigns/mql_handoff"):
        page = as_viewer.get(path)
        assert page.status_code == 200
        shown = page.text + "".join(previews(page.text))
        leaked = [value for value in MARIO_PII if value in shown]
        assert not leaked, f"a viewer's {path} shows {leaked}"
        assert 'method="post" action="/campaigns/' not in page.text  # no pause, resume or test-send form
    page = as_viewer.get(f"/campaigns/{PROMOTION}?occurrence={MARIOS_OCCURRENCE}")
    assert "(hidden)" in previews(page.text)[0]  # rendered, with the name masked before rendering


def test_a_viewer_cannot_pause_or_test_send(as_viewer):
    for path in ("pause", "resume", "test-send"):
        assert as_viewer.post(f"/campaigns/{PROMOTION}/{path}", {"to": "x@example.it", "step": "1"}).status_code == 403


def test_pausing_and_resuming_is_recorded_with_who_and_when(as_marketer, studio):
    assert as_marketer.post("/campaigns/birthday/pause", {}, token=False).status_code == 403  # no CSRF token
    page = as_marketer.post("/campaigns/birthday/pause", {})
    assert page.status_code == 200 and page.url.endswith("/campaigns/birthday")
    assert "birthday paused by mara." in text_of(page.text) and "Paused : paused by mara at" in text_of(page.text)
    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        assert actions.paused(con)["birthday"].actor == "mara"
    listing = text_of(as_marketer.get("/campaigns").text.split('data-campaign="birthday"')[1].split("</tr>")[0])
    assert "paused" in listing
    page = as_marketer.post("/campaigns/birthday/resume", {})
    assert "birthday resumed by mara." in text_of(page.text)
    history = text_of(page.text.split('id="actions"')[1])
    assert "mara resume" in history and "mara pause" in history
    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        assert "birthday" not in actions.paused(con)


def test_an_unknown_campaign_is_a_404(as_marketer):
    assert as_marketer.get("/campaigns/nobody").status_code == 404
    assert as_marketer.post("/campaigns/nobody/pause", {}).status_code == 404


def test_a_test_send_goes_through_the_smtp_channel_marked_as_a_test_and_never_into_the_ledger(
        as_marketer, studio, smtp_store):
    before = ledger_rows(studio.warehouse_path)
    page = as_marketer.post(f"/campaigns/{PROMOTION}/test-send", {
        "step": "1", "template": "favourite_on_promotion_b", "occurrence": MARIOS_OCCURRENCE,
        "to": "giulia.test@emporionove.it"})
    assert page.status_code == 200
    assert "Test of step 1 (favourite_on_promotion_b) to giulia.test@emporionove.it: sent" in text_of(page.text)
    [message] = received(smtp_store)
    assert message["To"].addresses[0].addr_spec == "giulia.test@emporionove.it"
    assert message["Subject"].startswith("[TEST] ") and message["X-Attiva-Test"] == "true"
    assert message["From"].addresses[0].addr_spec == "ciao@emporionove.it"
    assert "Mario" in message.get_body(("html",)).get_content()
    assert message["Message-ID"].startswith("<test.")
    assert ledger_rows(studio.warehouse_path) == before  # not a message to the customer
    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        [recorded] = [a for a in actions.history(con, PROMOTION)
                      if a["action"] == "test_send" and a["message_id"] in message["Message-ID"]]
    assert (recorded["actor"], recorded["customer_id"], recorded["sent_to"], recorded["template"]) == (
        "mara", MARIO, "giulia.test@emporionove.it", "favourite_on_promotion_b")
    assert recorded["outcome"].startswith("sent")


def test_a_test_send_to_something_that_is_not_an_address_sends_nothing(as_marketer, smtp_store):
    page = as_marketer.post(f"/campaigns/{PROMOTION}/test-send", {
        "step": "1", "template": PROMOTION, "occurrence": MARIOS_OCCURRENCE, "to": "giulia, bcc: x@y.it"})
    assert "Nothing sent: that is not an email address" in text_of(page.text)
    assert received(smtp_store) == []


def test_while_a_writer_holds_the_warehouse_a_pause_answers_503(as_marketer, studio, writer_holding):
    answer = as_marketer.post("/campaigns/win_back/pause", {})
    assert answer.status_code == 503 and f"PID {writer_holding.pid}" in answer.text
    writer_holding.kill()
    writer_holding.wait()
    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        assert "win_back" not in actions.paused(con)


@pytest.fixture
def twilio_sandbox(tmp_path, monkeypatch) -> Iterator[str]:
    """The sandbox's Twilio, which channels.yml's `sms` channel points at (ATTIVA_SANDBOX_PORT); its URL."""
    for name in ("ATTIVA_SMS_URL", "ATTIVA_SMS_TOKEN", "ATTIVA_SMS_ACCOUNT_SID", "ATTIVA_CHANNELS"):
        monkeypatch.delenv(name, raising=False)
    with running_sandbox(tmp_path / "sandbox") as url:
        monkeypatch.setenv("ATTIVA_SANDBOX_PORT", url.rsplit(":", 1)[1])
        yield url


def test_a_test_of_an_sms_campaign_goes_to_the_number_typed_marked_as_a_test(as_marketer, console, studio,
                                                                             twilio_sandbox):
    page = as_marketer.get("/campaigns/birthday_sms")
    assert 'type="tel" name="to"' in page.text
    occurrence = re.search(r'name="occurrence" value="([^"]+)"', page.text)[1]
    before = ledger_rows(studio.warehouse_path)
    refused = as_marketer.post("/campaigns/birthday_sms/test-send", {
        "step": "1", "template": "birthday_sms", "occurrence": occurrence, "to": "mara@emporionove.it"})
    assert "Nothing sent: that is not a phone number" in text_of(refused.text)
    answer = as_marketer.post("/campaigns/birthday_sms/test-send", {
        "step": "1", "template": "birthday_sms", "occurrence": occurrence, "to": "+39 333 765 4321"})
    assert "to +393337654321: sent" in text_of(answer.text)
    [message] = requests.get(f"{twilio_sandbox}/_sandbox/state/twilio", timeout=10).json()["messages"]
    assert message["to"] == "+393337654321" and message["body"].startswith("[TEST] ")
    assert "STOP" in message["body"]
    assert ledger_rows(studio.warehouse_path) == before  # not a message to the customer
    assert "+393337654321" in text_of(answer.text.split('id="actions"')[1])
    viewer = Visitor(console)
    viewer.log_in("vera")
    shown = viewer.get("/campaigns/birthday_sms").text
    assert "•••21" in shown and "3337654321" not in shown  # the number typed, masked for a viewer


def test_each_step_of_a_journey_is_tested_by_its_own_channel(as_marketer, console, studio, twilio_sandbox):
    """win_back sends its coupon by email, then an SMS a week later: the email step's test goes to an address,
    the SMS step's to a number, through Twilio."""
    page = as_marketer.get("/campaigns/win_back").text
    email_step, sms_step = page.split('<div class="rendering" data-step="2"', 1)
    assert 'type="email" name="to"' in email_step and 'type="tel" name="to"' not in email_step
    assert 'type="tel" name="to"' in sms_step
    occurrence = re.search(r'name="occurrence" value="([^"]+)"', page)[1]
    answer = as_marketer.post("/campaigns/win_back/test-send", {
        "step": "2", "template": "win_back_sms", "occurrence": occurrence, "to": "+39 333 765 4321"})
    assert "to +393337654321: sent" in text_of(answer.text)
    [message] = requests.get(f"{twilio_sandbox}/_sandbox/state/twilio", timeout=10).json()["messages"]
    assert message["body"].startswith("[TEST] Emporio Nove") and "STOP per annullare" in message["body"]
