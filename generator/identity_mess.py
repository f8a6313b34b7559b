"""The same person under records with nothing in common: what only probabilistic matching can join.

Real exports carry one person several times with no identifier shared: a typo in the email
(mraio.rossi@gmial.com), first and last name swapped ("Rossi Mario", common on Italian forms), a
diminutive (Beppe for Giuseppe), a phone number taken after the older records were written, a shop
account under another surname with its own address. Each kind hits a share of a source's records
and is recorded per record (`kind` of `_truth/record_mess.parquet`); on a share of the hit records
the email and phone the person uses elsewhere are left out too (`missing_email`, `missing_phone`),
so no deterministic rule can join them and the truth says they are one person.

Draws are made per record id, so every exported version of one record carries the same mess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator import mess, names

KINDS = ("email_typo", "name_swapped", "nickname", "new_phone", "other_surname", "missing_email", "missing_phone")


@dataclass(frozen=True)
class Rates:
    """Shares of a source's records hit by each kind (the others follow the person: new phone, other surname)."""

    email_typo: float  # of records with a real email
    name_swapped: float  # of records with both names
    nickname: float  # of records whose first name has a common diminutive
    isolated: float  # of records hit by any kind: the person's usual email and phone are left out as well


RATES = {
    # Typed by sales reps, imported from fair badges and lists: the messiest.
    "crm_contacts": Rates(email_typo=0.03, name_swapped=0.04, nickname=0.08, isolated=0.5),
    # Typed by the customers themselves at sign-up.
    "shop_customers": Rates(email_typo=0.012, name_swapped=0.015, nickname=0.03, isolated=0.3),
}


def disguise(rng: np.random.Generator, frame: pl.DataFrame, people: pl.DataFrame, source: str,
             record_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`frame` (records of `source` with person_index and created_at) with identity mess; and what was done.

    Returns the frame with email, phone, first_name and last_name changed where hit, and a frame of
    (person_index, source, record_id, kind), one row per record and kind. A typo never lands on
    anyone's real address.
    """
    rates = RATES[source]
    taken_emails = pl.concat([people[c] for c in ("personal_email", "work_email", "other_surname_email")]).drop_nulls()
    key = frame[record_id].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_ids = int(key.max()) + 1 if len(key) else 0

    def draw() -> np.ndarray:
        return rng.random(n_ids)[key]

    who = people.select("first_name", "country", "new_phone", "phone_changed_at", "other_surname",
                        "other_surname_email").gather(frame["person_index"])
    email = frame["email"].str.strip_chars().str.to_lowercase()
    real_email = (email.str.contains("@", literal=True)
                  & ~email.is_in([p.lower() for p in mess.EMAIL_PLACEHOLDERS])).fill_null(False).to_numpy()
    real_phone = (frame["phone"].is_not_null() & ~frame["phone"].is_in(list(mess.PHONE_PLACEHOLDERS))).to_numpy()
    has_names = (frame["first_name"].is_not_null() & frame["last_name"].is_not_null()).to_numpy()
    nickname = who["first_name"].replace_strict({k: v[0] for k, v in names.NICKNAMES.items()}, default=None)
    second = who["first_name"].replace_strict({k: v[-1] for k, v in names.NICKNAMES.items()}, default=None)

    hit = {
        "email_typo": real_email & (draw() < rates.email_typo),
        "name_swapped": has_names & (draw() < rates.name_swapped),
        "nickname": nickname.is_not_null().to_numpy() & frame["first_name"].is_not_null().to_numpy()
        & (draw() < rates.nickname),
        "new_phone": real_phone & (frame["created_at"] >= who["phone_changed_at"]).fill_null(False).to_numpy(),
        "other_surname": who["other_surname"].is_not_null().to_numpy() & (source == "shop_customers"),
    }
    other_email = hit["other_surname"] & real_email & who["other_surname_email"].is_not_null().to_numpy()
    hit["email_typo"] &= ~other_email
    isolated = np.logical_or.reduce(list(hit.values())) & (draw() < rates.isolated)
    hit["missing_email"] = isolated & real_email & ~hit["email_typo"] & ~other_email
    hit["missing_phone"] = isolated & real_phone & ~hit["new_phone"]

    style, where, which = (draw() * len(mess.EMAIL_TYPOS)).astype(np.int64), draw(), (draw() * 8).astype(np.int64)
    rows = np.flatnonzero(hit["email_typo"])
    typo = _only(rows, len(key), mess.typo_emails(email.gather(rows), style[rows], where[rows], which[rows],
                                                   taken_emails))
    rows = np.flatnonzero(hit["new_phone"])
    new_phone = _only(rows, len(key), mess.spell_phones(rng, who["new_phone"].gather(rows),
                                                        who["country"].gather(rows)))
    first = pl.select(pl.when(pl.lit(pl.Series(draw() < 0.5))).then(nickname).otherwise(second)).to_series()
    mask = {kind: pl.lit(pl.Series(values)) for kind, values in hit.items()}
    given = pl.when(mask["nickname"]).then(pl.lit(first)).otherwise(pl.col("first_name"))
    family = pl.when(mask["other_surname"]).then(pl.lit(who["other_surname"])).otherwise(pl.col("last_name"))
    messy = frame.with_columns(
        email=pl.when(mask["missing_email"]).then(None)
        .when(pl.lit(pl.Series(other_email))).then(pl.lit(who["other_surname_email"]))
        .when(mask["email_typo"]).then(pl.lit(typo))
        .otherwise(pl.col("email")),
        phone=pl.when(mask["missing_phone"]).then(None)
        .when(mask["new_phone"]).then(pl.lit(new_phone))
        .otherwise(pl.col("phone")),
        first_name=pl.when(mask["name_swapped"]).then(family).otherwise(given),
        last_name=pl.when(mask["name_swapped"]).then(given).otherwise(family),
    )
    done = pl.concat([
        frame.filter(pl.Series(values)).select("person_index", pl.lit(source).alias("source"),
                                               pl.col(record_id).alias("record_id"), pl.lit(kind).alias("kind"))
        for kind, values in hit.items()
    ]).unique(maintain_order=True)
    return messy, done


def _only(rows: np.ndarray, n: int, values: pl.Series) -> pl.Series:
    """`values` at `rows` of an otherwise null column of `n` rows."""
    return pl.repeat(None, n, eager=True, dtype=pl.String).scatter(rows, values) if len(rows) else (
        pl.repeat(None, n, eager=True, dtype=pl.String))
