"""Lead-ad leads (Meta Lead Ads) in the warehouse: landed as the leadgen webhook lands them, ingested into the
handcrafted warehouse and built incrementally, then rebuilt in full. A lead with a known email joins that
customer and leaves their CRM funnel alone; a new email or phone is a new lead with lead_source
facebook_lead_ads / instagram_lead_ads; a lead with neither belongs to nobody; a lead landed twice is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from activations.destinations.meta.leads import lead_row
from activations.serve.events import write_landing_file
from activations.serve.meta_leads import LEADS_FOLDER
from tests.dbt.on_top import forgotten, owner, query

pytestmark = pytest.mark.xdist_group("handcrafted")


def lead(lead_id: str, created: str, platform: str, **answers: str) -> dict:
    return lead_row({"id": lead_id, "created_time": created, "platform": platform, "form_id": "F1", "ad_id": "A1",
                     "field_data": [{"name": k, "values": [v]} for k, v in answers.items()]},
                    {"leadgen_id": lead_id, "page_id": "P1"}, "2026-11-20T11:00:00Z")


LEADS = [
    lead("L1", "2026-11-19T09:00:00+0000", "fb", email="  Mario.Rossi@Gmail.com", full_name="Mario Rossi"),
    lead("L2", "2026-11-19T10:00:00+0000", "ig", **{"e-mail": "Sofia.Lead@Example.it", "nome": "Sofia",
                                                     "cognome": "Conti", "consenso_marketing": "sì"}),
    lead("L3", "2026-11-19T11:00:00+0000", "ig", città="Bari"),  # neither email nor phone: anonymous
    lead("L4", "2026-11-19T12:00:00+0000", "fb", phone_number="340 555 6677", full_name="Piero Neri Bassi",
         marketing_opt_in="yes"),  # ticked, but no email to send to: no email consent
]


def land(landing: Path) -> None:
    """The leads as the webhook lands them, L1 twice (tests/dbt/conftest.py lands them with the others)."""
    write_landing_file(landing / LEADS_FOLDER, LEADS, "meta-leads")
    write_landing_file(landing / LEADS_FOLDER, LEADS[:1], "meta-leads")  # L1 landed twice


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_a_lead_with_a_known_email_joins_that_customer_and_keeps_their_crm_funnel(on_top, handcrafted_warehouse,
                                                                                 which) -> None:
    warehouse = on_top[which]
    [mario] = owner(handcrafted_warehouse, "crm_contact_id", "C1")
    assert owner(warehouse, "meta_lead_id", "L1") == {mario}
    before = query(handcrafted_warehouse, "select lead_source, became_lead_at, first_name from marts.customers "
                                          "where customer_id = ?", mario)
    assert query(warehouse, "select lead_source, became_lead_at, first_name from marts.customers "
                            "where customer_id = ?", mario) == before == [("paid_search", before[0][1], "Mario")]
    # Of the leads, only L2 and L4 are new customers (other files land on top too: tests/dbt/conftest.py).
    ids = "select customer_id from marts.customers"
    new = {r[0] for r in query(warehouse, ids)} - {r[0] for r in query(handcrafted_warehouse, ids)}
    by_lead = {r[0] for r in query(warehouse, "select customer_id from marts.customer_identifiers "
                                              "where identifier_type = 'meta_lead_id'")}
    assert new & by_lead == owner(warehouse, "meta_lead_id", "L2") | owner(warehouse, "meta_lead_id", "L4")
    assert len(new & by_lead) == 2


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_a_new_email_or_phone_is_a_new_lead_from_lead_ads(on_top, which) -> None:
    warehouse = on_top[which]
    [sofia] = owner(warehouse, "email", "sofia.lead@example.it")
    [piero] = owner(warehouse, "phone", "+393405556677")
    assert owner(warehouse, "meta_lead_id", "L2") == {sofia} and owner(warehouse, "meta_lead_id", "L4") == {piero}
    rows = dict((r[0], r[1:]) for r in query(
        warehouse, "select customer_id, lead_source, cast(became_lead_at as varchar), lifecycle_stage, first_name, "
                   "last_name from marts.customers where customer_id in (?, ?)", sofia, piero))
    assert rows[sofia] == ("instagram_lead_ads", "2026-11-19 10:00:00", "lead", "Sofia", "Conti")
    assert rows[piero] == ("facebook_lead_ads", "2026-11-19 12:00:00", "lead", "Piero", "Neri Bassi")
    consent = dict(query(warehouse, "select customer_id, consent_email from marts.customers "
                                    "where customer_id in (?, ?)", sofia, piero))
    assert consent == {sofia: True, piero: False}  # Sofia ticked the form's marketing box
    funnel = dict(query(warehouse, "select lead_source, leads from measurement.lead_funnel "
                                   "where lead_source like '%lead_ads' and lead_month = date '2026-11-01'"))
    assert funnel == {"instagram_lead_ads": 1, "facebook_lead_ads": 1}


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_a_lead_without_email_or_phone_is_anonymous_and_a_lead_landed_twice_is_one(on_top, which) -> None:
    warehouse = on_top[which]
    assert owner(warehouse, "meta_lead_id", "L3") == set()
    assert query(warehouse, "select count(*), count(distinct lead_id) from staging.stg_social__leads") == [(4, 4)]
    assert query(warehouse, "select lead_source from staging.stg_social__leads where lead_id = 'L3'") == \
        [("instagram_lead_ads",)]


def test_forget_erases_a_social_lead_s_answers_and_name_from_the_raw_table(on_top, tmp_path) -> None:
    warehouse = forgotten(on_top[0], tmp_path, "sofia.lead@example.it")
    rows = query(warehouse, "select email, first_name, last_name, full_name, field_data, platform from raw.social_leads "
                            "where lead_id = 'L2'")
    [(kept,)] = query(warehouse, "select count(*) from raw.social_leads where field_data like '%Rossi%'")
    assert rows == [("erased", None, None, None, None, "ig")]  # the ids and platform stay, the answers go
    assert kept == 2  # Mario's lead (landed twice) is untouched
