"""What the pages show, read from a real warehouse: audiences with their size, destinations, last
syncs and size history; a customer found by email, phone or id, with their profile, consent,
messages and why, audiences and identity; a viewer never gets an email, phone or name in the HTML."""

from __future__ import annotations

import time

import pytest

from activations.studio import reading
from tests.studio.conftest import MARIO, MARIO_PII, text_of


def test_the_audiences_page_lists_every_audience_with_its_size_destinations_and_last_syncs(as_viewer, studio_warehouse):
    import duckdb

    with duckdb.connect(str(studio_warehouse), read_only=True) as con:
        sizes = dict(con.execute("select 'aud_champions', count(*) from audiences.aud_champions union all "
                                 "select 'aud_email_subscribers', count(*) from audiences.aud_email_subscribers")
                     .fetchall())
    page = as_viewer.get("/audiences")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Data as of the build of" in text and "computed for 2026-11-20 12:00 UTC" in text
    for name in ("aud_champions", "aud_email_subscribers", "aud_at_risk", "aud_cart_abandoners"):
        assert f'data-audience="{name}"' in page.text
    champions = page.text.split('data-audience="aud_champions"')[1].split("</tr>")[0]
    assert f'<td class="num size">{sizes["aud_champions"]:,}</td>' in champions
    assert "meta, hubspot" in text_of(champions)
    assert "aud_champions__hubspot: delivered_except_invalid, 0 confirmed, 0 rejected" in text_of(champions)
    assert "aud_champions__meta: failed" in text_of(champions)
    subscribers = text_of(page.text.split('data-audience="aud_email_subscribers"')[1].split("</tr>")[0])
    assert "sendgrid" in subscribers and "aud_email_subscribers__sendgrid: never run" in subscribers


def test_an_audience_page_shows_each_syncs_last_run_and_the_size_at_each_run(as_viewer):
    page = as_viewer.get("/audiences/aud_champions")
    text = text_of(page.text)
    assert page.status_code == 200 and "Data as of" in text
    # hubspot's last run (the 20th), not its first; meta's failure with its error.
    assert ("aud_champions__hubspot hubspot mirror email_marketable 2026-11-20 06:00 delivered_except_invalid "
            "1 1 0 0 1" in text)
    assert "aud_champions__meta meta mirror consent_ads 2026-11-20 06:05 failed: HTTP 503 from meta 1 0 0 1 0" in text
    assert "<svg" in page.text  # size over time
    history = text.split("Size over time")[1]
    assert ("2026-11-20 06:05 sync aud_champions__meta 1" in history and "2026-11-18 06:00 sync aud_champions__hubspot 2"
            in history)


def test_an_unknown_audience_is_a_404(as_viewer):
    assert as_viewer.get("/audiences/aud_nobody").status_code == 404


@pytest.mark.parametrize("who", ["mario.rossi@gmail.com", " Mario.Rossi@Gmail.com ", "+393331234567", "333 123 4567",
                                 MARIO])
def test_a_marketer_finds_a_customer_by_email_phone_or_id(as_marketer, who):
    page = as_marketer.post("/customers", {"who": who})
    assert page.status_code == 200
    assert f'href="/customers/{MARIO}"' in page.text and "mario.rossi@gmail.com" in page.text


def test_an_identifier_nobody_has_finds_no_one(as_marketer):
    assert "No customer has that identifier." in as_marketer.post("/customers", {"who": "nobody@example.it"}).text


def test_the_search_never_puts_the_identifier_in_the_url(as_viewer):
    page = as_viewer.post("/customers", {"who": "mario.rossi@gmail.com"})
    assert page.url.endswith("/customers") and "mario" not in page.url


def test_a_marketer_sees_the_whole_profile(as_marketer):
    page = as_marketer.get(f"/customers/{MARIO}")
    text = text_of(page.text)
    assert page.status_code == 200 and "Data as of" in text
    assert all(value in page.text for value in ("mario.rossi@gmail.com", "+393331234567", "Mario", "Rossi"))
    assert "consent_email consent_sms consent_ads consent_profiling email_marketable email_hard_bounced" in text
    assert "aud_champions" in text.split("Audiences", 2)[2]
    # The ledger: what was sent and what was spared, with the reason.
    assert "win_back 1 email win_back_1 sent 2026-11-01 09:00 sent 2026-11-01 10:00 UTC, accepted by email" in text
    assert "birthday 1 email birthday_1 suppressed" in text and "frequency cap: 2 marketing messages in 7 days" in text
    # The identity: the records joined and by what.
    identity = text.split("which records are this customer")[1]
    assert "crm_contact_id C1 record" in identity and "shop_customer_id S1 joined by email mario.rossi@gmail.com" in identity


def test_a_viewer_sees_the_profile_without_personal_data(as_viewer):
    page = as_viewer.get(f"/customers/{MARIO}")
    assert page.status_code == 200
    leaked = [value for value in MARIO_PII if value in page.text]
    assert not leaked, f"a viewer's page shows {leaked}"
    text = text_of(page.text)
    assert "m•••@g•••.com" in text and "•••67" in text and "(hidden)" in text
    assert "rfm_segment champion" in text and "aud_champions" in text  # what is not personal stays
    assert "frequency cap: 2 marketing messages in 7 days" in text
    assert "shop_customer_id S1 joined by email m•••@g•••.com" in text


def test_a_viewers_search_shows_masked_matches(as_viewer):
    page = as_viewer.post("/customers", {"who": "+393331234567"})
    assert f'href="/customers/{MARIO}"' in page.text
    assert not [value for value in MARIO_PII if value in page.text]


def test_an_unknown_customer_is_a_404(as_marketer):
    assert as_marketer.get("/customers/cus_nobody").status_code == 404


def test_pages_answer_while_the_warehouse_is_read_and_hold_no_connection_between_pages(studio, as_viewer):
    import duckdb

    # Another process's reader does not stop the console (read-only opens share the file) ...
    with duckdb.connect(str(studio.warehouse_path), read_only=True):
        assert as_viewer.get("/audiences").status_code == 200
    # ... and the console holds no connection between pages: a writer gets the file right after.
    started = time.monotonic()
    duckdb.connect(str(studio.warehouse_path)).close()
    assert time.monotonic() - started < 5


def test_a_missing_warehouse_is_explained(studio, tmp_path):
    with pytest.raises(reading.NoWarehouse, match="run `attiva demo`"):
        with reading.reading(tmp_path / "none.duckdb"):
            pass


def test_while_a_writer_holds_the_warehouse_a_page_says_who_instead_of_hanging(as_viewer, writer_holding):
    page = as_viewer.get("/audiences")
    assert page.status_code == 503
    assert f"PID {writer_holding.pid}" in page.text and "The warehouse cannot be read right now" in page.text
    writer_holding.kill()
    writer_holding.wait()
    assert as_viewer.get("/audiences").status_code == 200
