"""Brand and product mentions on the web: the `web_mentions` export (listening/mentions), messy as feeds are.

News items, blog posts, social posts and reviews in Italian and English (and a few in Spanish, French or
German), about the retailer (Casa Lume, as listening.yml names it), its two competitors (Lanterna Living,
Maison Ardesia) or both, on delivery, price, quality, service and sustainability, with emoji and hashtags.
Planted: the brand's mentions grow more positive over the period (POSITIVE_SHARE at the start and end),
the competitors' stay flat. Mess: syndicated news (the same article under another source with the same
url), a site reposting its own text under a new id the same day (case and punctuation changed), items
fetched twice (the same row again), source_kind in any case, a language column that is missing, a locale
(it-IT) or wrong. The truth (`_truth/mentions.parquet`) keeps each mention's planted label, language,
brands and, for a copy, the mention it copies.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from generator.clock import DAY

BRAND, COMPETITORS = "Casa Lume", ("Lanterna Living", "Maison Ardesia")
DAYS_BACK = 120
BASE, PER_CUSTOMER, MOST = 400, 0.02, 4000  # mentions: BASE + PER_CUSTOMER x customers, at most MOST
BRAND_SHARE, BOTH_SHARE = 0.55, 0.08  # of mentions: the brand alone; the brand and a competitor
OTHER_LANGUAGE_SHARE = 0.05
ENGLISH_SHARE = 0.35  # of Italian and English mentions
POSITIVE_SHARE = {"start": 0.30, "end": 0.60}  # the brand's mentions; the rest split negative 2 : neutral 1
COMPETITOR_POSITIVE, COMPETITOR_NEGATIVE = 0.40, 0.30
SYNDICATED_SHARE, REPOSTED_SHARE, REFETCHED_SHARE = 0.25, 0.04, 0.05
KINDS = ("news", "blog", "social", "review")
KIND_WEIGHTS = (0.2, 0.15, 0.45, 0.2)
SOURCES = {"news": ("Corriere Casa", "Il Quotidiano Design", "Home Retail News", "Moda & Casa Oggi"),
           "blog": ("Diario di casa", "The Linen Journal", "Arredare con poco"),
           "social": ("Instagram", "X", "Facebook", "TikTok"),
           "review": ("Trustpilot", "Google Reviews", "Recensioni Verificate")}
TOPICS = {
    "it": {"delivery": "la consegna", "price": "il prezzo", "quality": "la qualità del tessuto",
           "service": "il servizio clienti", "sustainability": "il cotone riciclato"},
    "en": {"delivery": "the delivery", "price": "the price", "quality": "the fabric quality",
           "service": "the customer service", "sustainability": "the recycled cotton"},
}
TEMPLATES = {
    ("it", "positive"): ("Adoro {b}! {t} è ottima 😍", "{b} non mi ha mai deluso, {t} davvero eccellente",
                         "Bellissimo acquisto da {b}, {t} perfetta 👍", "Consiglio {b}: {t} è fantastica!",
                         "Che meraviglia il nuovo divano di {b}, {t} super"),
    ("it", "negative"): ("{b} mi ha deluso, {t} è pessima 😡", "Mai più da {b}: {t} è un disastro",
                         "Pessima esperienza con {b}, {t} terribile", "{b}? {t} scadente, che delusione 👎",
                         "Non comprate da {b}, {t} è orribile"),
    ("it", "neutral"): ("{b} apre un nuovo negozio a Torino", "Qualcuno ha provato {b}? Com'è {t}?",
                        "{b} presenta la collezione autunno inverno", "Oggi da {b} per vedere le tende",
                        "Il catalogo {b} arriva a novembre"),
    ("en", "positive"): ("Love {b}! {t} is excellent 😍", "So happy with {b}, {t} is perfect 👍",
                         "{b} never disappoints, {t} is great", "Highly recommend {b}: {t} is amazing!",
                         "Beautiful new lamp from {b}, {t} is superb"),
    ("en", "negative"): ("{b} was a disaster, {t} is terrible 😡", "Never again with {b}: {t} is awful",
                         "Really disappointed with {b}, {t} is poor 👎", "Avoid {b}, {t} is the worst",
                         "{b} let me down, {t} is horrible"),
    ("en", "neutral"): ("{b} opens a new store in Turin", "Has anyone tried {b}? How is {t}?",
                        "{b} presents its autumn collection", "Browsing the {b} catalogue today",
                        "{b} catalogue out in November"),
}
OTHER_LANGUAGE = ("{b} abre una nueva tienda en Madrid con lámparas de diseño",
                  "{b} ouvre une boutique à Lyon avec des meubles italiens",
                  "{b} eröffnet ein neues Geschäft in München mit italienischen Möbeln")
HASHTAGS = ("#casalume", "#homedecor", "#arredamento", "#ootd", "")


def mentions(rng: np.random.Generator, customers: int, as_of: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the web_mentions landing rows, published_at in epoch s; the truth, one row per landed row)."""
    n = min(MOST, BASE + int(customers * PER_CUSTOMER))
    published = np.sort(as_of - rng.integers(600, DAYS_BACK * DAY, n))
    progress = 1 - (as_of - published) / (DAYS_BACK * DAY)  # 0 at the start of the period, 1 now
    who = rng.random(n)
    brand = who < BRAND_SHARE + BOTH_SHARE
    competitor = np.where(who < BRAND_SHARE, -1, rng.integers(0, len(COMPETITORS), n))
    other_language = rng.random(n) < OTHER_LANGUAGE_SHARE
    english = rng.random(n) < ENGLISH_SHARE
    kinds = rng.choice(len(KINDS), n, p=KIND_WEIGHTS)
    positive = np.where(brand, POSITIVE_SHARE["start"] + (POSITIVE_SHARE["end"] - POSITIVE_SHARE["start"]) * progress,
                        COMPETITOR_POSITIVE)
    negative = np.where(brand, (1 - positive) * 2 / 3, COMPETITOR_NEGATIVE)
    draw = rng.random(n)
    labels = np.where(draw < positive, "positive", np.where(draw < positive + negative, "negative", "neutral"))
    topic_names = list(TOPICS["it"])
    topics = rng.integers(0, len(topic_names), n)
    template = rng.integers(0, 5, n)
    with_emoji_tag = rng.random(n)
    rows, truth = [], []
    for i in range(n):
        kind = KINDS[kinds[i]]
        names = ([BRAND] if brand[i] else []) + ([COMPETITORS[competitor[i]]] if competitor[i] >= 0 else [])
        named = " e ".join(names) if not english[i] else " and ".join(names)
        if other_language[i]:
            lang, label = "other", None
            text = OTHER_LANGUAGE[i % len(OTHER_LANGUAGE)].format(b=named)
        else:
            lang, label = ("en" if english[i] else "it"), str(labels[i])
            topic = TOPICS[lang][topic_names[topics[i]]]
            text = TEMPLATES[(lang, label)][template[i]].format(b=named, t=topic)
            text = text[0].upper() + text[1:]
        if kind == "social" and with_emoji_tag[i] < 0.5:
            text = f"{text} {HASHTAGS[i % len(HASHTAGS)]}".strip()
        source = SOURCES[kind][i % len(SOURCES[kind])]
        mention_id = f"m{i:06d}-{rng.integers(16**6):06x}"
        url = None if kind == "social" and i % 3 else f"https://{source.lower().replace(' ', '').replace('&', '')}.example/{mention_id}"
        declared = _declared(rng, lang)
        rows.append({"mention_id": mention_id, "url": url, "source_kind": _spelled(rng, kind), "source_name": source,
                     "title": text[:60] if kind in ("news", "blog") else None, "text": text,
                     "author": None if kind == "news" else f"user{int(rng.integers(1, 9999))}",
                     "published_at": int(published[i]), "language": declared})
        truth.append({"mention_id": mention_id, "label": label, "language": None if lang == "other" else lang,
                      "brand": bool(brand[i]), "competitor": COMPETITORS[competitor[i]] if competitor[i] >= 0 else None,
                      "topic": None if lang == "other" else topic_names[topics[i]], "copy_of": None, "copy": None})
    originals = list(rows)
    for i, row in enumerate(originals):
        kind = row["source_kind"].lower()
        draw, syndicated = rng.random(), rng.random() < SYNDICATED_SHARE
        if kind == "news" and row["url"] and syndicated:  # another outlet, the same article
            others = [s for s in SOURCES["news"] if s != row["source_name"]]
            copy = {**row, "mention_id": f"{row['mention_id']}-syn", "source_name": others[i % len(others)],
                    "published_at": row["published_at"] + int(rng.integers(60, 6 * 3600))}
            rows.append(copy)
            truth.append({**truth[i], "mention_id": copy["mention_id"], "copy_of": row["mention_id"], "copy": "url"})
        elif draw < REPOSTED_SHARE:  # the same site reposts it under a new id and url
            at = row["published_at"] - row["published_at"] % DAY + DAY - 1  # later the same UTC day
            copy = {**row, "mention_id": f"{row['mention_id']}-re", "url": row["url"] and row["url"] + "?repost=1",
                    "text": row["text"].upper() + "!!", "published_at": max(row["published_at"], at)}
            rows.append(copy)
            truth.append({**truth[i], "mention_id": copy["mention_id"], "copy_of": row["mention_id"], "copy": "text"})
        elif draw < REPOSTED_SHARE + REFETCHED_SHARE:  # fetched twice
            rows.append(dict(row))
            truth.append({**truth[i], "copy_of": row["mention_id"], "copy": "id"})
    order = np.argsort([r["published_at"] for r in rows], kind="stable")
    frame = pl.DataFrame([rows[j] for j in order], infer_schema_length=None)
    return frame, pl.DataFrame([truth[j] for j in order], infer_schema_length=None)


def _spelled(rng: np.random.Generator, kind: str) -> str:
    draw = rng.random()
    return kind.upper() if draw < 0.05 else kind.capitalize() if draw < 0.15 else kind


def _declared(rng: np.random.Generator, language: str) -> str | None:
    """What the feed says: often nothing, sometimes a locale, now and then wrong."""
    draw = rng.random()
    if draw < 0.4:
        return None
    if draw < 0.5:
        return "it"  # a feed that says Italian whatever it carries
    code = "it" if language == "other" else language
    return {"it": "it-IT", "en": "en-GB"}[code] if draw < 0.7 else code
