"""The email calendar: which campaigns went out when over the last 90 days.

Shared by email engagement (who received what) and orders (utm_campaign of
email-driven orders), so attribution in the warehouse lines up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from generator.clock import DAY

WINDOW_DAYS = 90
NEWSLETTER_TOPICS = ("novita_caffe", "guida_te", "nuova_collezione", "idee_regalo", "offerte_settimana",
                     "casa_e_cucina", "scarpe_di_stagione", "ricette_moka")
B2B_TOPICS = ("listino_horeca", "miscele_bar", "forniture_ufficio")
PROMO_TOPICS = {1: "saldi_invernali", 2: "san_valentino", 3: "festa_della_donna", 4: "pasqua", 5: "festa_della_mamma",
                6: "inizio_estate", 7: "saldi_estivi", 8: "ferragosto", 9: "back_to_school", 10: "settimana_caffe",
                11: "black_friday", 12: "natale"}


def campaigns(as_of: int) -> pl.DataFrame:
    """Campaigns sent in the WINDOW_DAYS before as_of: name, sent_at (epoch s), audience, reach.

    A weekly newsletter (Tuesdays), a monthly B2B mailing (first Thursday) and a
    promotion every four weeks (Fridays); `reach` is the share of the eligible
    audience each one goes to.
    """
    now = datetime.fromtimestamp(as_of, UTC)
    start = (now - timedelta(days=WINDOW_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for offset in range(WINDOW_DAYS + 1):
        day = start + timedelta(days=offset)
        label = day.strftime("%Y-%m-%d")
        week = int(day.strftime("%V"))
        if day.weekday() == 1:
            rows.append((f"{label}_newsletter_{NEWSLETTER_TOPICS[week % len(NEWSLETTER_TOPICS)]}",
                         day + timedelta(hours=7, minutes=30), "everyone", 0.35))
        if day.weekday() == 3 and day.day <= 7:
            rows.append((f"{label}_b2b_{B2B_TOPICS[day.month % len(B2B_TOPICS)]}",
                         day + timedelta(hours=8), "b2b", 0.9))
        if day.weekday() == 4 and week % 4 == 0:
            rows.append((f"{label}_promo_{PROMO_TOPICS[day.month]}", day + timedelta(hours=16), "everyone", 0.5))
    sent = [int(r[1].timestamp()) for r in rows]
    keep = [i for i, s in enumerate(sent) if as_of - WINDOW_DAYS * DAY <= s < as_of]
    return pl.DataFrame(
        {
            "campaign": [rows[i][0] for i in keep],
            "sent_at": [sent[i] for i in keep],
            "audience": [rows[i][2] for i in keep],
            "reach": [rows[i][3] for i in keep],
        },
        schema={"campaign": pl.String, "sent_at": pl.Int64, "audience": pl.String, "reach": pl.Float64},
    )
