"""A customer's consent history and event timeline on their page: Mario's consent records (email at
checkout, ads and SMS given under his phone, the SMS later revoked at the preference centre), Paola's
unsubscribe, and Mario's latest events with the products they name; a viewer sees them with no email,
phone or name, and a URL without its query string."""

from __future__ import annotations

from activations.studio.timeline import path_only
from tests.studio.conftest import MARIO, MARIO_PII, PAOLA, text_of


def section(html: str, element_id: str) -> str:
    """The text of the table with this id."""
    return text_of(html.split(f'id="{element_id}">', 1)[1].split("</table>", 1)[0])


def test_a_marketer_sees_marios_consent_history_newest_first(as_marketer):
    history = section(as_marketer.get(f"/customers/{MARIO}").text, "consent-history")
    assert history.startswith("when (UTC) channel status source given under record "
                              "2025-01-01 10:00 sms revoked preference_center phone +393331234567 K13 ")
    # Three records of 2024-01-01 10:00, by channel; each with the identifier it was given under.
    assert ("2024-01-01 10:00 ads granted checkout phone +393331234567 K2 "
            "2024-01-01 10:00 email granted checkout email mario.rossi@gmail.com K1 "
            "2024-01-01 10:00 sms granted checkout phone +393331234567 K12") in history


def test_an_unsubscribe_is_in_the_history_as_a_revocation(as_marketer):
    history = section(as_marketer.get(f"/customers/{PAOLA}").text, "consent-history")
    assert "2026-10-10 10:00 email revoked email unsubscribe email paola.sala@libero.it M4" in history
    assert "2026-07-15 09:00 email granted checkout email paola.sala@libero.it K6" in history


def test_a_marketer_sees_marios_latest_events_with_their_products(as_marketer):
    page = as_marketer.get(f"/customers/{MARIO}").text
    assert text_of(page.split('id="events-total">')[1].split("</p>")[0]).endswith("6 events, newest first.")
    events = section(page, "events")
    assert events.startswith("when (UTC) event platform product URL form "
                             "2026-11-20 09:30 product_view web Camicia Oxford (clothing) "
                             "2026-11-19 09:00 product_view web Camicia Oxford (clothing) "
                             "2026-11-18 08:00 page_view web https://shop.example/account?email=mario.rossi@gmail.com#orders "
                             "2026-11-17 10:00 add_to_cart web Macinacaffè Manuale (kitchen) × 1 "
                             "2026-11-10 08:01 login web 2026-11-10 08:00 page_view web /")


def test_a_viewer_sees_the_history_and_timeline_without_personal_data(as_viewer):
    page = as_viewer.get(f"/customers/{MARIO}").text
    leaked = [value for value in MARIO_PII if value in page]
    assert not leaked, f"a viewer's page shows {leaked}"
    history = section(page, "consent-history")
    assert "2025-01-01 10:00 sms revoked preference_center phone •••67 K13" in history
    assert "2024-01-01 10:00 email granted checkout email m•••@g•••.com K1" in history
    events = section(page, "events")
    assert "2026-11-18 08:00 page_view web https://shop.example/account 2026-11-17" in events
    assert "Camicia Oxford (clothing)" in events


def test_a_viewer_gets_a_urls_path_only():
    assert path_only("https://shop.example/p/1?email=a@b.it&t=x#top") == "https://shop.example/p/1"
    assert path_only("https://user:secret@shop.example/unsubscribe/a@b.it") == "https://shop.example/unsubscribe/(hidden)"
    assert path_only("/cart?coupon=X") == "/cart" and path_only(None) is None
