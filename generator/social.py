"""Lead-ad form submissions on Facebook and Instagram (Meta Lead Ads): the `social_leads` export, messy as the
forms people fill in on a phone inside an ad.

Who submits: people the CRM already knows (the same email, spelt in any case and spacing: they join that
customer), people nobody knows yet (a new lead), a few who leave only a phone, and a few who leave neither
(a name and a city: anonymous brand engagement, nobody's lead). Forms are written by the marketer, so half
ask in Italian (nome, cognome, e-mail, numero_di_telefono, città) and half in English with Meta's prefilled
questions (full_name, email, phone_number, city); some have a marketing checkbox. The row's columns are what
`attiva serve`'s leadgen webhook reads from those answers (activations/destinations/meta/leads.py), and
`field_data` keeps the answers themselves.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from activations.destinations.meta.leads import lead_row
from generator import mess
from generator.clock import DAY
from generator.streams import increasing_ids

LEAD_SHARE = 0.03  # of people, one lead-ad form each
KNOWN_SHARE = 0.4  # of leads: somebody the CRM knows, by the same email
PHONE_ONLY_SHARE = 0.12  # of leads: a phone and no email
ANONYMOUS_SHARE = 0.05  # of leads: neither
INSTAGRAM_SHARE = 0.35
ITALIAN_FORM_SHARE = 0.5
CHECKBOX_SHARE = 0.6  # forms with a marketing checkbox
TICKED_SHARE = 0.7
PAGE_ID, FORMS, ADS = "104857600000001", ("720000000000101", "720000000000102", "720000000000103"), 6
DAYS_BACK = 120


def social_leads(rng: np.random.Generator, people: pl.DataFrame, as_of: int) -> pl.DataFrame:
    """One `social_leads` row per lead-ad form submitted, created_at and received_at in epoch s, with the
    submitter's person_index."""
    n_people = people.height
    has_email = people["email"].is_not_null().to_numpy()
    in_crm = people["in_crm"].to_numpy() & has_email
    n = max(1, int(n_people * LEAD_SHARE))
    kind = rng.random(n)
    known = kind < KNOWN_SHARE
    pool_known, pool_new = np.flatnonzero(in_crm), np.flatnonzero(~people["in_crm"].to_numpy() & has_email)
    pool_known = pool_known if pool_known.size else np.arange(n_people)
    pool_new = pool_new if pool_new.size else np.arange(n_people)
    person = np.where(known, rng.choice(pool_known, n), rng.choice(pool_new, n))
    phone_only = ~known & (kind > 1 - PHONE_ONLY_SHARE - ANONYMOUS_SHARE) & (kind <= 1 - ANONYMOUS_SHARE)
    anonymous = kind > 1 - ANONYMOUS_SHARE
    emails = mess.spell_emails(rng, people["email"].gather(person), 0.4).to_list()
    phones, first, last, city = (people[c].gather(person).to_list() for c in ("phone", "first_name", "last_name",
                                                                               "city"))
    created = as_of - rng.integers(60, DAYS_BACK * DAY, n)
    instagram, italian = rng.random(n) < INSTAGRAM_SHARE, rng.random(n) < ITALIAN_FORM_SHARE
    checkbox, ticked = rng.random(n) < CHECKBOX_SHARE, rng.random(n) < TICKED_SHARE
    upper = rng.random(n) < 0.1  # an export that spells the platform FB / IG
    ids = increasing_ids(rng, n, 10**15, 1000)
    rows = []
    for i in range(n):
        email = None if phone_only[i] or anonymous[i] else emails[i]
        phone = None if anonymous[i] or (not phone_only[i] and rng.random() < 0.5) else phones[i]
        if phone and phone.startswith("+39") and rng.random() < 0.5:  # typed the national way: 333 123 4567
            phone = f"{phone[3:6]} {phone[6:9]} {phone[9:]}"
        if italian[i]:
            answers = [("nome", first[i]), ("cognome", last[i]), ("e-mail", email), ("numero_di_telefono", phone),
                       ("città", city[i])]
            consent = ("consenso_marketing", "sì" if ticked[i] else "no")
        else:
            answers = [("full_name", f"{first[i]} {last[i]}"), ("email", email), ("phone_number", phone),
                       ("city", city[i])]
            consent = ("marketing_opt_in", "yes" if ticked[i] else "no")
        if checkbox[i]:
            answers.append(consent)
        field_data = [{"name": k, "values": [v]} for k, v in answers if v is not None]
        lead_id = str(ids[i])
        row = lead_row({"id": lead_id, "platform": "ig" if instagram[i] else "fb", "is_organic": False,
                        "form_id": FORMS[i % len(FORMS)], "ad_id": str(230000000000000 + i % ADS),
                        "field_data": field_data}, {"leadgen_id": lead_id, "page_id": PAGE_ID}, "")
        if upper[i]:
            row["platform"] = row["platform"].upper()
        rows.append({**row, "created_at": int(created[i]), "received_at": int(created[i]) + 5,
                     "field_data": json.dumps(field_data, ensure_ascii=False), "person_index": int(person[i])})
    return pl.DataFrame(rows, infer_schema_length=None).sort("created_at")
