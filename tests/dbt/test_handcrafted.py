"""Identity resolution, customer 360 and audiences on handcrafted people with known answers
(tests/fixtures/handcrafted, as_of 2026-11-20 12:00 UTC)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from activations.build import build_warehouse
from activations.ingest import load_landing
from tests.conftest import HANDCRAFTED_AS_OF

pytestmark = pytest.mark.xdist_group("handcrafted")

# Source records of each handcrafted person.
PEOPLE = {
    "mario": ["crm_contact_id:C1", "shop_customer_id:S1", "device_id:D1"],
    "giulia": ["crm_contact_id:C2", "shop_customer_id:S2"],
    "luca": ["crm_contact_id:C3"],
    "anna": ["crm_contact_id:C4"],
    "marco": ["crm_contact_id:C5"],
    "sara": ["crm_contact_id:C6"],
    "paolo": ["crm_contact_id:C7"],
    "elena": ["crm_contact_id:C8"],
    "chiara": ["crm_contact_id:C9", "device_id:D6"],
    "laura": ["shop_customer_id:S3", "device_id:D2", "device_id:D3"],
    "franco": ["shop_customer_id:S4"],
    "rita": ["shop_customer_id:S5", "device_id:D5"],
    "paola": ["shop_customer_id:S6", "guest_order_id:G1"],
    "davide": ["shop_customer_id:S7"],
}


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def owners(warehouse: Path) -> dict[str, set[str]]:
    """identifier 'type:value' -> customer ids holding it."""
    found: dict[str, set[str]] = {}
    for key, customer in query(warehouse, "select identifier_type || ':' || identifier_value, customer_id "
                                          "from marts.customer_identifiers"):
        found.setdefault(key, set()).add(customer)
    return found


def customer_of(warehouse: Path, people: dict[str, list[str]] | None = None) -> dict[str, str]:
    """person name -> the one customer id all their records resolved to (PEOPLE by default)."""
    held = owners(warehouse)
    result = {}
    for person, records in (people or PEOPLE).items():
        ids = set().union(*(held.get(r, set()) for r in records))
        assert len(ids) == 1, f"{person}'s records {records} resolved to {ids or 'no customer'}"
        result[person] = ids.pop()
    return result


def test_each_person_is_one_customer_and_distinct_people_stay_apart(handcrafted_warehouse):
    ids = customer_of(handcrafted_warehouse)
    assert len(set(ids.values())) == len(PEOPLE), "two different people were merged"
    (customers,) = query(handcrafted_warehouse, "select count(*) from marts.customers")
    assert customers[0] == len(PEOPLE)


def test_placeholders_never_link(handcrafted_warehouse):
    # Luca and Anna share only 'test@test.com' and placeholder phones.
    ids = customer_of(handcrafted_warehouse)
    assert ids["luca"] != ids["anna"]
    assert not query(handcrafted_warehouse, "select * from marts.customer_identifiers "
                                            "where identifier_value in ('test@test.com', 'n/a', '+390000000000')")


def test_role_mailbox_and_family_phone_are_shared_not_merged(handcrafted_warehouse):
    ids = customer_of(handcrafted_warehouse)
    held = owners(handcrafted_warehouse)
    assert held["email:info@acme.it"] == {ids["marco"], ids["sara"], ids["paolo"]}
    assert held["phone:+393471112233"] == {ids["elena"], ids["davide"]}
    shared = {r[0] for r in query(handcrafted_warehouse, "select distinct identifier_type || ':' || identifier_value "
                                                         "from marts.customer_identifiers where is_shared")}
    assert shared == {"email:info@acme.it", "phone:+393471112233", "device_id:D4"}


def test_phone_and_email_spellings_merge(handcrafted_warehouse):
    held = owners(handcrafted_warehouse)
    ids = customer_of(handcrafted_warehouse)
    # '+39 333 1234567' (CRM) and '0039 3331234567' (shop); '3337654321' and '333-765-4321'
    assert held["phone:+393331234567"] == {ids["mario"]}
    assert held["phone:+393337654321"] == {ids["giulia"]}
    # '  Mario.Rossi@Gmail.com ' and 'mario.rossi@gmail.com'; 'Paola.Sala@Libero.it ' on a guest order
    assert held["email:mario.rossi@gmail.com"] == {ids["mario"]}
    assert held["email:paola.sala@libero.it"] == {ids["paola"]}


def test_golden_record_prefers_crm_and_unshared_contact_points(handcrafted_warehouse):
    ids = customer_of(handcrafted_warehouse)
    rows = dict(query(handcrafted_warehouse, "select customer_id, email from marts.customers"))
    assert rows[ids["mario"]] == "mario.rossi@gmail.com"
    assert rows[ids["giulia"]] == "giulia@work.it"  # the CRM's address wins over the shop's
    assert rows[ids["marco"]] == "info@acme.it"  # shared, but the only one he has


def test_customer_360_fields(handcrafted_warehouse):
    ids = customer_of(handcrafted_warehouse)
    with duckdb.connect(str(handcrafted_warehouse), read_only=True) as con:
        cur = con.execute("select * from marts.customers")
        names = [d[0] for d in cur.description]
        rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    mario, franco = rows[ids["mario"]], rows[ids["franco"]]
    assert (mario["orders_count"], float(mario["revenue"]), mario["lifecycle_stage"]) == (5, 238.10, "customer")
    assert mario["favourite_product_id"] == "P1" and mario["timezone"] == "Europe/Rome"
    assert mario["consent_email"] and mario["email_marketable"] and mario["consent_ads"]
    assert not mario["consent_sms"], "SMS granted then revoked: the latest record wins"
    assert not franco["email_marketable"], "a hard bounce makes an address unmarketable"
    assert franco["orders_count"] == 1, "a cancelled order is not an order"
    assert not rows[ids["paola"]]["consent_email"], "an unsubscribe revokes email consent"
    assert not rows[ids["giulia"]]["consent_email"], "revoked under another of her emails: latest record wins"
    assert rows[ids["rita"]]["consent_email"], "consent given under her shop account id"
    assert rows[ids["chiara"]]["lead_score"] >= 30 and rows[ids["chiara"]]["is_b2b"]
    assert rows[ids["laura"]]["churn_risk"] == "high" and rows[ids["laura"]]["days_since_last_order"] == 264


AUDIENCES = {
    "aud_champions": {"mario"},
    "aud_at_risk": {"laura", "paola", "franco"},
    "aud_cart_abandoners": {"laura"},
    "aud_birthdays_this_month": {"mario", "anna"},
    "aud_email_subscribers": {"mario", "laura", "rita", "chiara", "marco", "sara", "paolo"},
    "aud_leads_to_nurture": {"chiara"},
    "aud_favourite_on_promotion": {"mario", "paola", "laura"},
    "aud_high_ltv_seed": {"mario"},
}


@pytest.mark.parametrize("audience", sorted(AUDIENCES))
def test_audience_contains_exactly_the_expected_people(handcrafted_warehouse, audience):
    ids = customer_of(handcrafted_warehouse)
    names = {v: k for k, v in ids.items()}
    members = {names[r[0]] for r in query(handcrafted_warehouse, f"select customer_id from audiences.{audience}")}
    assert members == AUDIENCES[audience]


def test_recommendations_suggest_what_goes_with_purchases(handcrafted_warehouse):
    ids = customer_of(handcrafted_warehouse)
    recs = query(handcrafted_warehouse, f"select product_id, reason from marts.customer_recommendations "
                                        f"where customer_id = '{ids['paola']}' order by recommendation_rank")
    # Paola bought the coffee blend (P1); the espresso cup (P3) is bought with it in 3 orders.
    assert recs[0] == ("P3", "goes_with_purchases")
    assert "P1" not in {r[0] for r in recs}, "never recommend what they already bought"
    assert "P7" not in {r[0] for r in recs}, "never recommend an inactive product"


def test_bad_rows_are_quarantined_and_duplicates_dropped(handcrafted_warehouse):
    quarantined = query(handcrafted_warehouse, "select file, line, field from raw.quarantine order by file, line")
    assert ("crm/contacts/contacts.csv", 11, "birth_date") in quarantined
    assert any(f == "events/events.jsonl" and line == 16 for f, line, _ in quarantined)
    assert query(handcrafted_warehouse, "select count(*) from marts.events where event_id = 'E2'") == [(1,)]
    held = owners(handcrafted_warehouse)
    assert "crm_contact_id:C10" not in held


def test_rebuild_with_no_new_data_changes_nothing_and_ids_are_stable(handcrafted_warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, copy)
    tables = ["marts.customers", "marts.customer_identifiers", "marts.events", "marts.orders",
              "audiences.aud_email_subscribers", "intermediate.int_events"]

    def snapshot():
        return {t: sorted(query(copy, f"select * from {t}")) for t in tables}

    before = snapshot()
    assert build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=copy).ok
    assert snapshot() == before

    # Giulia gets a new phone in a new CRM export: she keeps her id and gains the phone.
    landing = tmp_path / "landing" / "crm" / "contacts"
    landing.mkdir(parents=True)
    (landing / "contacts_update.csv").write_text(
        "contact_id,email,phone,first_name,last_name,created_at,updated_at\n"
        "C2,giulia@work.it,+39 320 9998877,Giulia,Bianchi,2024-03-01 10:00:00,2026-11-19 10:00:00\n")
    assert not load_landing(tmp_path / "landing", copy).failed_files
    assert build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=copy).ok
    ids_before = customer_of(handcrafted_warehouse)
    ids_after = customer_of(copy)
    assert ids_after == ids_before
    assert owners(copy)["phone:+393209998877"] == {ids_before["giulia"]}
