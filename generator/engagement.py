"""Email engagement over the last 90 days, as an email service provider exports it.

Each campaign of the calendar goes to a share of the people with email consent
at send time (hard-bounced and unsubscribed addresses are suppressed from later
sends). Per message: ~0.5% hard and ~1.2% soft bounces, else delivered; ~25% of
deliveries are opened (some twice; most in the reader's preferred hour, send_hours.py), ~3% clicked, ~0.2% unsubscribe, ~0.02%
complain. Two seed addresses of the marketing team get every campaign too.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from generator import mess
from generator.campaigns import campaigns
from generator.clock import HOUR, MINUTE
from generator.consent import ConsentPlan
from generator.send_hours import Habits
from generator.streams import hex_ids, pick

SITE = "https://www.emporionove.it"
HARD_BOUNCE_RATE, SOFT_BOUNCE_RATE = 0.005, 0.012  # of messages sent
OPEN_RATE, REOPEN_RATE, CLICK_GIVEN_OPEN = 0.25, 0.3, 0.12  # of delivered, of opened, of opened
UNSUBSCRIBE_RATE, COMPLAINT_RATE = 0.002, 0.0002  # of delivered
SEED_LIST = ("marketing@emporionove.it", "test@test.com")
LANDINGS = ("/offerte", "/c/caffe", "/c/te", "/c/abbigliamento", "/c/casa", "/novita")


KINDS = ("delivered", "bounce", "open", "click", "unsubscribe", "complaint")
DELIVERED, BOUNCE, OPEN, CLICK, UNSUBSCRIBE, COMPLAINT = range(len(KINDS))
BOUNCE_TYPES = ("hard", "soft")


def engagement(rng: np.random.Generator, people: pl.DataFrame, consent: ConsentPlan,
               as_of: int, habits: Habits | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ESP export (occurred_at in epoch s, plus person_index; null for seed addresses) and the unsubscribes.
    `habits`: when people open (their own draws, so the rest of the export is the same with or without)."""
    n = people.height
    has_email = people["email"].is_not_null().to_numpy()
    b2b = people["is_b2b"].to_numpy()
    suppressed_at = np.full(n, np.iinfo(np.int64).max)  # hard bounce or unsubscribe
    calendar = campaigns(as_of)
    parts: list[dict[str, np.ndarray]] = []
    next_message = 0  # message numbers, turned into message ids at the end
    for number, (_, sent_at, audience, reach) in enumerate(calendar.iter_rows()):
        eligible = has_email & consent.emailable(sent_at) & (suppressed_at > sent_at)
        if audience == "b2b":
            eligible &= b2b
        to = np.flatnonzero(eligible & (rng.random(n) < reach))
        messages, gone, gone_at = _messages(rng, to, sent_at, next_message, habits)
        np.minimum.at(suppressed_at, gone, gone_at)
        seeds = _seed_list(rng, sent_at, next_message + len(to))
        next_message += len(to) + len(SEED_LIST)
        for part in (messages, seeds):
            part["campaign"] = np.full(len(part["at"]), number)
            parts.append(part)

    rows = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
            for key in ("person", "kind", "at", "message", "bounce", "landing", "campaign")}
    kept = np.flatnonzero(rows["at"] <= as_of)
    order = kept[np.argsort(rows["at"][kept], kind="stable")]
    rows = {key: values[order] for key, values in rows.items()}
    person, kind, landing = rows["person"], rows["kind"], rows["landing"]
    m = len(person)

    seed_address = pl.Series(SEED_LIST).gather(np.maximum(-person - 1, 0))
    address = mess.spell_emails(rng, people["email"].gather(np.maximum(person, 0)), 0.05)
    campaign = calendar["campaign"].gather(rows["campaign"])
    clicked = np.flatnonzero(landing >= 0)
    url = pl.repeat(None, m, eager=True, dtype=pl.String).scatter(
        clicked,
        SITE + pl.Series(LANDINGS).gather(landing[clicked])
        + "?utm_source=newsletter&utm_medium=email&utm_campaign=" + campaign.gather(clicked),
    )
    message_ids = hex_ids(rng, next_message, 12)

    def only(mask: np.ndarray, values: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(mask))).then(pl.lit(values))).to_series()

    export = pl.DataFrame(
        {
            "engagement_id": hex_ids(rng, m, 16),
            "email": pl.select(pl.when(pl.lit(pl.Series(person >= 0))).then(pl.lit(address))
                               .otherwise(pl.lit(seed_address))).to_series(),
            "event_type": pl.Series(KINDS).gather(kind),
            "occurred_at": rows["at"],
            "campaign": campaign,
            "message_id": "<" + message_ids.gather(rows["message"]) + "@mail.emporionove.it>",
            "bounce_type": only(rows["bounce"] >= 0, pl.Series(BOUNCE_TYPES).gather(np.maximum(rows["bounce"], 0))),
            "url": url,
            "person_index": only(person >= 0, pl.Series(person)),
        }
    )
    unsubscribed = kind == UNSUBSCRIBE
    unsubscribes = pl.DataFrame({"person_index": person[unsubscribed], "at": rows["at"][unsubscribed]})
    return export, unsubscribes


def _messages(rng: np.random.Generator, to: np.ndarray, sent_at: int, first_message: int,
              habits: Habits | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One campaign's deliveries, bounces, opens, clicks, unsubscribes and complaints.

    Returns the rows and who gets suppressed from later sends (hard bounce, unsubscribe, complaint) and when.
    """
    k = len(to)
    message = first_message + np.arange(k)
    delivered_at = sent_at + rng.integers(0, 20 * MINUTE, k)
    outcome = rng.random(k)
    hard = outcome < HARD_BOUNCE_RATE
    soft = (outcome >= HARD_BOUNCE_RATE) & (outcome < HARD_BOUNCE_RATE + SOFT_BOUNCE_RATE)
    delivered = ~hard & ~soft
    opened = delivered & (rng.random(k) < OPEN_RATE)
    opened_at = delivered_at + (rng.exponential(5 * HOUR, k)).astype(np.int64)
    if habits is not None:
        opened_at = habits.opened_at(to, delivered_at, opened_at)
    reopened = opened & (rng.random(k) < REOPEN_RATE)
    reopened_at = opened_at + (rng.exponential(24 * HOUR, k)).astype(np.int64)
    clicked = opened & (rng.random(k) < CLICK_GIVEN_OPEN)
    clicked_at = opened_at + rng.integers(5, 10 * MINUTE, k)
    unsubscribed = delivered & (rng.random(k) < UNSUBSCRIBE_RATE)
    unsubscribed_at = opened_at + rng.integers(5, 5 * MINUTE, k)
    complained = delivered & (rng.random(k) < COMPLAINT_RATE)
    complained_at = delivered_at + (rng.exponential(24 * HOUR, k)).astype(np.int64)
    landing = pick(rng, k, [3, 3, 1, 1, 1, 1])
    none = np.full(k, -1)

    parts = []
    for mask, kind, at, bounce, page in (
        (delivered, DELIVERED, delivered_at, none, none),
        (hard, BOUNCE, delivered_at, np.zeros(k, dtype=np.int64), none),
        (soft, BOUNCE, delivered_at, np.ones(k, dtype=np.int64), none),
        (opened, OPEN, opened_at, none, none),
        (reopened, OPEN, reopened_at, none, none),
        (clicked, CLICK, clicked_at, none, landing),
        (unsubscribed, UNSUBSCRIBE, unsubscribed_at, none, none),
        (complained, COMPLAINT, complained_at, none, none),
    ):
        parts.append({"person": to[mask], "kind": np.full(mask.sum(), kind), "at": at[mask],
                      "message": message[mask], "bounce": bounce[mask], "landing": page[mask]})
    rows = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    gone = hard | unsubscribed | complained
    gone_at = np.minimum.reduce([np.where(hard, delivered_at, np.iinfo(np.int64).max),
                                 np.where(unsubscribed, unsubscribed_at, np.iinfo(np.int64).max),
                                 np.where(complained, complained_at, np.iinfo(np.int64).max)])
    return rows, to[gone], gone_at[gone]


def _seed_list(rng: np.random.Generator, sent_at: int, first_message: int) -> dict[str, np.ndarray]:
    """The marketing team's own addresses (person -1, -2) receive and open every campaign."""
    k = len(SEED_LIST)
    at = sent_at + rng.integers(0, MINUTE, k)
    return {
        "person": np.tile(-1 - np.arange(k), 2),
        "kind": np.repeat([DELIVERED, OPEN], k),
        "at": np.concatenate([at, at + rng.integers(MINUTE, HOUR, k)]),
        "message": np.tile(first_message + np.arange(k), 2),
        "bounce": np.full(2 * k, -1),
        "landing": np.full(2 * k, -1),
    }
