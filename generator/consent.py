"""Consent per channel (email, sms, ads, profiling): granted at signup or checkout, some revoked, a few re-granted.

`plan` decides each person's email consent timeline (emails are only sent to
people who have it); `records` writes the consent export, adding a revocation
for most unsubscribes seen in email engagement. Records are keyed by email
and/or phone and/or shop_customer_id, as each collection point knows them;
the latest record per person and channel wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator import mess
from generator.clock import MINUTE
from generator.streams import increasing_ids

REVOKE_SHARE = 0.1
REGRANT_SHARE = 0.25  # of revocations
UNSUBSCRIBE_RECORDED = 0.8  # of email unsubscribes that also reach the consent export


@dataclass(frozen=True)
class Grant:
    person: np.ndarray  # person index
    at: np.ndarray  # epoch s
    source: str  # checkout, newsletter_form, preference_center, crm


@dataclass(frozen=True)
class ConsentPlan:
    email_grants: tuple[Grant, ...]
    email_granted_at: np.ndarray  # per person, earliest grant (epoch s), -1 if never
    email_revoked_at: np.ndarray  # per person, -1 if not revoked
    email_regranted_at: np.ndarray  # per person, -1 if not re-granted

    def emailable(self, at: int) -> np.ndarray:
        """Who may receive email at `at` (before unsubscribes from email engagement)."""
        granted = (self.email_granted_at >= 0) & (self.email_granted_at <= at)
        revoked = (self.email_revoked_at >= 0) & (self.email_revoked_at <= at)
        regranted = (self.email_regranted_at >= 0) & (self.email_regranted_at <= at)
        return granted & (~revoked | regranted)


def plan(rng: np.random.Generator, people: pl.DataFrame, account_created_at: np.ndarray,
         first_guest_order_at: np.ndarray, form_at: np.ndarray, crm_created_at: np.ndarray, as_of: int) -> ConsentPlan:
    """Email consent per person from every collection point, and who later revoked (and re-granted) it."""
    n = people.height
    has_email = people["email"].is_not_null().to_numpy()
    b2b = people["is_b2b"].to_numpy()
    grants = []
    for at, share, source in (
        (account_created_at, 0.6, "checkout"),
        (first_guest_order_at, 0.35, "checkout"),
        (form_at, 0.95, "newsletter_form"),
        (crm_created_at, np.where(b2b, 0.5, 0.35), "crm"),
    ):
        who = np.flatnonzero((at >= 0) & has_email & (rng.random(n) < share))
        grants.append(Grant(who, at[who], source))
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, -1, dtype=np.int64)
    for g in grants:
        np.minimum.at(first, g.person, g.at)
        np.maximum.at(last, g.person, g.at)
    granted = last >= 0
    first = np.where(granted, first, -1)
    # A revocation comes after the person's last grant, so the latest record agrees with who gets email.
    revoked = granted & (rng.random(n) < REVOKE_SHARE)
    revoked_at = np.where(revoked, last + (rng.random(n) * (as_of - last)).astype(np.int64), -1)
    regranted = revoked & (rng.random(n) < REGRANT_SHARE)
    regranted_at = np.where(regranted, revoked_at + (rng.random(n) * (as_of - revoked_at)).astype(np.int64), -1)
    return ConsentPlan(tuple(grants), first, revoked_at, regranted_at)


def records(rng: np.random.Generator, people: pl.DataFrame, plan: ConsentPlan, shop_id: pl.Series,
            account_created_at: np.ndarray, unsubscribes: pl.DataFrame, as_of: int) -> pl.DataFrame:
    """The consent export: consent columns (recorded_at in epoch s) plus person_index, in time order."""
    n = people.height
    parts = []

    def add(person: np.ndarray, at: np.ndarray, channel: str, status: str, source: str,
            key_email: float, key_phone: float, key_shop: float) -> None:
        k = len(person)
        parts.append(pl.DataFrame({
            "person_index": person.astype(np.int64),
            "recorded_at": at.astype(np.int64),
            "channel": pl.repeat(channel, k, eager=True, dtype=pl.String),
            "status": pl.repeat(status, k, eager=True, dtype=pl.String),
            "source": pl.repeat(source, k, eager=True, dtype=pl.String),
            "key_email": rng.random(k) < key_email,
            "key_phone": rng.random(k) < key_phone,
            "key_shop": rng.random(k) < key_shop,
        }))

    # Email: every grant, then revocations and re-grants from the preference centre.
    for g in plan.email_grants:
        from_shop = g.source == "checkout"
        add(g.person, g.at, "email", "granted", g.source, 0.7 if from_shop else 1.0, 0.1 if from_shop else 0.0,
            1.0 if from_shop else 0.0)
    revoked = np.flatnonzero(plan.email_revoked_at >= 0)
    add(revoked, plan.email_revoked_at[revoked], "email", "revoked", "preference_center", 1.0, 0.0, 0.5)
    regranted = np.flatnonzero(plan.email_regranted_at >= 0)
    add(regranted, plan.email_regranted_at[regranted], "email", "granted", "preference_center", 1.0, 0.0, 0.5)

    # Unsubscribes from email engagement mostly reach the consent export a little later.
    unsub = unsubscribes.filter(pl.Series(rng.random(unsubscribes.height) < UNSUBSCRIBE_RECORDED))
    add(unsub["person_index"].to_numpy(), unsub["at"].to_numpy() + rng.integers(MINUTE, 30 * MINUTE, unsub.height),
        "email", "revoked", "preference_center", 1.0, 0.0, 0.3)

    # SMS, ads and profiling are asked for at account creation, keyed by the shop account.
    has_phone = people["phone"].is_not_null().to_numpy()
    for channel, share in (("sms", 0.25), ("ads", 0.35), ("profiling", 0.45)):
        who = np.flatnonzero((account_created_at >= 0) & (rng.random(n) < share) & (has_phone | (channel != "sms")))
        at = account_created_at[who]
        add(who, at, channel, "granted", "checkout", 0.5, 1.0 if channel == "sms" else 0.1, 1.0)
        back = rng.random(len(who)) < 0.08
        later = at + (rng.random(len(who)) * (as_of - at)).astype(np.int64)
        add(who[back], later[back], channel, "revoked", "preference_center", 0.5, 1.0 if channel == "sms" else 0.0,
            1.0)
        again = back & (rng.random(len(who)) < 0.2)
        add(who[again], later[again] + ((as_of - later[again]) * rng.random(again.sum())).astype(np.int64),
            channel, "granted", "preference_center", 0.5, 1.0 if channel == "sms" else 0.0, 1.0)

    frame = pl.concat(parts)
    frame = frame.filter(pl.col("recorded_at") <= as_of).sort("recorded_at", maintain_order=True)
    person = frame["person_index"].to_numpy()
    who = people[person]
    k = frame.height
    sms = (frame["channel"] == "sms").to_numpy()
    shop = shop_id.gather(person)
    key_shop = frame["key_shop"].to_numpy() & shop.is_not_null().to_numpy()
    key_email = frame["key_email"].to_numpy() | (~key_shop & ~frame["key_phone"].to_numpy())
    # Checkout knows the address people shop with; forms, the CRM and the ESP know their main one.
    address = pl.select(
        pl.when(pl.lit(frame["source"] == "checkout")).then(pl.lit(who["shop_email"])).otherwise(pl.lit(who["email"]))
    ).to_series()
    email = mess.with_placeholders(rng, mess.spell_emails(rng, address, 0.15), 0.01, mess.EMAIL_PLACEHOLDERS)
    phone = mess.spell_phones(rng, who["phone"], who["country"])
    return frame.select(
        consent_id=pl.Series(increasing_ids(rng, k, 900_000_000, 5)).cast(pl.String),
        email=pl.when(pl.lit(pl.Series(key_email))).then(pl.lit(email)),
        phone=pl.when(pl.col("key_phone") | pl.lit(pl.Series(sms))).then(pl.lit(phone)),
        shop_customer_id=pl.when(pl.lit(pl.Series(key_shop))).then(pl.lit(shop)),
        channel=pl.col("channel"),
        status=pl.col("status"),
        recorded_at=pl.col("recorded_at"),
        source=pl.col("source"),
        person_index=pl.col("person_index"),
    )

