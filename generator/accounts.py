"""Shop accounts (shop_customers): one per account holder, plus older versions of a few.

Half the buyers open their account at their first checkout, the others some
time before; account holders who never bought opened theirs any time in the
last five years. A few accounts appear twice in the export (an older version
with an earlier updated_at): the latest version wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator import mess
from generator.clock import DAY, MINUTE
from generator.streams import increasing_ids

OLDER_VERSION_SHARE = 0.04


@dataclass(frozen=True)
class Accounts:
    frame: pl.DataFrame  # shop_customers columns (timestamps in epoch s) plus person_index
    shop_id: pl.Series  # per person: their shop_customer_id, null for people without an account
    created_at: np.ndarray  # per person: when the account was opened (epoch s), -1 without one


def accounts(rng: np.random.Generator, people: pl.DataFrame, first_order_at: np.ndarray, as_of: int) -> Accounts:
    """Shop accounts of the people who have one; `first_order_at` is per person, -1 when they never ordered."""
    n_people = people.height
    person = np.flatnonzero(people["in_shop"].to_numpy())
    n = len(person)
    first = first_order_at[person]
    at_checkout = rng.random(n) < 0.5
    before_first = np.where(
        at_checkout, first - rng.integers(MINUTE, 15 * MINUTE, n), first - (rng.exponential(120, n) * DAY).astype(np.int64)
    )
    anytime = as_of - (rng.random(n) ** 1.3 * 5 * 365 * DAY).astype(np.int64)
    created = np.maximum(np.where(first >= 0, before_first, anytime), as_of - 6 * 365 * DAY)
    changed = rng.random(n) < 0.6
    updated = np.where(changed, created + (rng.random(n) * (as_of - created)).astype(np.int64), created)

    order = np.argsort(created, kind="stable")
    person, created, updated = person[order], created[order], updated[order]
    ids = pl.Series(increasing_ids(rng, n, 7_000_000_000_000, 4_000)).cast(pl.String)
    who = people[person]

    def present(share: float, values: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(rng.random(n) < share))).then(pl.lit(values))).to_series()

    email = mess.with_placeholders(rng, mess.spell_emails(rng, who["shop_email"], 0.15), 0.015,
                                   mess.EMAIL_PLACEHOLDERS)
    phone = mess.spell_phones(rng, who["phone"], who["country"])
    phone = present(0.6, mess.with_placeholders(rng, phone, 0.025, mess.PHONE_PLACEHOLDERS))
    frame = pl.DataFrame(
        {
            "shop_customer_id": ids,
            "email": email,
            "phone": phone,
            "first_name": mess.spell_names(rng, who["first_name"], 0.08),
            "last_name": mess.spell_names(rng, who["last_name"], 0.08),
            "birth_date": present(0.3, who["birth_date"]),
            "country": present(0.97, who["country"]),
            "city": present(0.9, who["city"]),
            "postal_code": present(0.88, who["postal_code"]),
            "created_at": created,
            "updated_at": updated,
            "person_index": person,
        }
    )

    # Older versions: the same account exported before its last change, with other spellings.
    old = np.flatnonzero((rng.random(n) < OLDER_VERSION_SHARE) & (updated > created))
    older = frame[old].with_columns(
        updated_at=pl.Series(created[old] + (rng.random(len(old)) * (updated[old] - created[old])).astype(np.int64)),
        phone=mess.spell_phones(rng, who["phone"].gather(old), who["country"].gather(old)),
        email=mess.spell_emails(rng, who["shop_email"].gather(old), 0.5),
    )
    frame = pl.concat([frame, older]).sort("shop_customer_id", "updated_at", maintain_order=True)

    shop_id = pl.repeat(None, n_people, eager=True, dtype=pl.String).scatter(person, ids)
    created_per_person = np.full(n_people, -1, dtype=np.int64)
    created_per_person[person] = created
    return Accounts(frame=frame, shop_id=shop_id, created_at=created_per_person)
