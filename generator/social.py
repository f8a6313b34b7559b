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


# Social interactions with the brand's pages (the `social_interactions` export), shaped as Meta's page and
# Instagram webhooks and LinkedIn's organization social actions give them.
HANDLE_SHARE = 0.08  # of people: a handle that interacts with the brand's pages
ANONYMOUS_PER_HANDLE = 2.0  # handles of people outside the customer base, per customer handle
SHARES_EMAIL = 0.25  # of customer handles: a direct message with the email quick reply
SHARES_PHONE = 0.05  # ...with the phone quick reply
TYPES_TWO_PEOPLE = 0.01  # of customer handles: also types someone else's email (a partner's, a friend's)
KINDS = ("reaction", "comment", "share", "follow", "mention", "message")
KIND_WEIGHTS = (0.5, 0.2, 0.1, 0.08, 0.07, 0.05)
REACTIONS = ("like", "like", "like", "love", "care", "haha", "wow", "sad", "angry")
LINKEDIN_REACTIONS = ("like", "praise", "empathy", "interest", "appreciation", "entertainment")
COMMENTS = ("Bellissimo! 😍", "Quando arriva la nuova collezione?", "Spedite anche in Svizzera?",
            "Ordine arrivato in due giorni, grazie!", "Love this!", "Do you ship to the UK?",
            "Il mio ordine è in ritardo da una settimana", "Prezzi troppo alti", "Top 👍", "Info in DM please")
PAGES = {"facebook": "104857600000001", "instagram": "17841400000000001", "linkedin": "urn:li:organization:5590001"}
POSTS_PER_PAGE = 40


def social_interactions(rng: np.random.Generator, people: pl.DataFrame, as_of: int) -> tuple[pl.DataFrame,
                                                                                               pl.DataFrame]:
    """(`social_interactions` rows, the truth of who each handle is): occurred_at in epoch s. The truth has one
    row per handle: platform, from_id, person_id (null outside the customer base), whether any of its
    messages shared the person's email or phone, and whether it also typed someone else's email.

    Mess: a webhook delivered twice, reactions taken back and unfollows (verb remove), edited comments,
    LinkedIn reactions without a member, the platform spelt Facebook or Instagram in some exports."""
    n_people = people.height
    owners = rng.choice(n_people, max(1, int(n_people * HANDLE_SHARE)), replace=False)
    b2b = people["is_b2b"].to_numpy()[owners]
    platform = np.where(b2b & (rng.random(owners.size) < 0.7), "linkedin",
                        np.where(rng.random(owners.size) < 0.55, "facebook", "instagram"))
    n_anonymous = int(owners.size * ANONYMOUS_PER_HANDLE)
    platform = np.concatenate([platform, rng.choice(["facebook", "instagram", "linkedin"], n_anonymous,
                                                    p=[0.5, 0.42, 0.08])])
    person = np.concatenate([owners, np.full(n_anonymous, -1)])
    ids = rng.permutation(increasing_ids(rng, person.size, 6_100_000_000_000_000, 10**9))
    from_id = [f"urn:li:person:{i:x}" if p == "linkedin" else str(i) for i, p in zip(ids, platform, strict=True)]
    emails = mess.spell_emails(rng, pl.Series(people["shop_email"].to_list() + [None]).gather(person), 0.4).to_list()
    phones = pl.Series(people["phone"].to_list() + [None]).gather(person).to_list()
    first = pl.Series(people["first_name"].to_list() + [None]).gather(person).to_list()
    last = pl.Series(people["last_name"].to_list() + [None]).gather(person).to_list()
    share = rng.random(person.size)
    rows, truth, next_id = [], [], 1
    for h in range(person.size):
        known, where = person[h] >= 0, str(platform[h])
        shared_email = known and emails[h] is not None and share[h] < SHARES_EMAIL
        shared_phone = known and phones[h] is not None and SHARES_EMAIL <= share[h] < SHARES_EMAIL + SHARES_PHONE
        name = f"{first[h]} {last[h]}" if known else f"user{ids[h] % 100000}"
        hidden = where == "linkedin" and rng.random() < 0.1  # LinkedIn shows some reactions without a member
        n = 1 + rng.geometric(0.35)
        kinds = rng.choice(KINDS, n, p=KIND_WEIGHTS)
        if shared_email or shared_phone:
            kinds = np.append(kinds, "message")
        followed = False
        for k, kind in enumerate(kinds):
            if kind == "follow" and followed:
                continue
            followed |= kind == "follow"
            at = int(as_of - rng.integers(60, DAYS_BACK * DAY))
            post = f"{PAGES[where]}_{rng.integers(POSTS_PER_PAGE) + 1}" if kind in ("reaction", "comment",
                                                                                   "share") else None
            row = {"interaction_id": None, "platform": where, "kind": kind, "verb": "add", "occurred_at": at,
                   "page_id": PAGES[where], "post_id": post, "from_id": None if hidden else from_id[h],
                   "from_name": None if hidden else name, "message": None, "reaction_type": None,
                   "email": None, "phone": None}
            if kind == "reaction":
                # Meta gives a reaction no id of its own: the post's and the person's make it one.
                row["interaction_id"] = f"{post}_{from_id[h]}" if not hidden else f"{post}_hidden{next_id}"
                row["reaction_type"] = str(rng.choice(LINKEDIN_REACTIONS if where == "linkedin" else REACTIONS))
            else:
                row["interaction_id"] = f"{'m_' if kind == 'message' else ''}{PAGES[where][-6:]}{next_id:09d}"
            if kind in ("comment", "mention"):
                row["message"] = str(rng.choice(COMMENTS))
            if kind == "message":
                last_message = k == len(kinds) - 1
                row["message"] = "Vorrei ricevere le offerte" if last_message else str(rng.choice(COMMENTS))
                if last_message and shared_email:
                    row["email"] = emails[h]
                if last_message and shared_phone:
                    row["phone"] = phones[h]
            next_id += 1
            rows.append(row)
            mess_draw = rng.random()
            if mess_draw < 0.03:  # the webhook delivered it twice
                rows.append(dict(row))
            elif kind == "reaction" and mess_draw < 0.08:  # taken back later
                rows.append({**row, "verb": "remove", "occurred_at": at + int(rng.integers(60, 3 * DAY))})
            elif kind == "comment" and mess_draw < 0.06:  # edited
                rows.append({**row, "verb": "edited", "message": row["message"] + " (modificato)"})
            elif kind == "follow" and mess_draw < 0.1:  # unfollowed
                rows.append({**row, "verb": "remove", "occurred_at": at + int(rng.integers(DAY, 30 * DAY))})
        truth.append({"platform": where, "from_id": from_id[h], "person_id": int(person[h]) + 1 if known else None,
                      "shares_identifier": bool(shared_email or shared_phone), "types_two_people": False})
    # A few people also type someone else's email in a message: their handle is shared and merges nobody.
    linked = [h for h in range(owners.size) if truth[h]["shares_identifier"] and emails[h] is not None]
    others = [e for e in people["shop_email"].to_list() if e]
    for h in rng.choice(linked, min(len(linked), max(1, round(len(linked) * TYPES_TWO_PEOPLE))), replace=False):
        rows.append({"interaction_id": f"m_{PAGES[platform[h]][-6:]}{next_id:09d}", "platform": str(platform[h]),
                     "kind": "message", "verb": "add", "occurred_at": int(as_of - rng.integers(60, DAY)),
                     "page_id": PAGES[platform[h]], "post_id": None, "from_id": from_id[h],
                     "from_name": f"{first[h]} {last[h]}", "message": "Iscrivete anche mia moglie",
                     "reaction_type": None, "email": str(rng.choice(others)), "phone": None})
        truth[h]["types_two_people"] = True
        next_id += 1
    frame = pl.DataFrame(rows, infer_schema_length=None)
    upper = rng.random(frame.height) < 0.1  # an export that spells the platform Facebook, Instagram
    frame = frame.with_columns(platform=pl.when(pl.Series(upper)).then(pl.col("platform").str.to_titlecase())
                               .otherwise(pl.col("platform")))
    return frame.sort("occurred_at", maintain_order=True), pl.DataFrame(truth, infer_schema_length=None)
