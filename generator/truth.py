"""The ground truth, written beside the landing files under `_truth/` (ingestion skips `_` folders).

`person_map` says which true person is behind each record id, so tests and
benchmarks can score identity resolution:

- crm_contacts / contact_id, shop_customers / shop_customer_id;
- events / anonymous_id (one device);
- shop_orders / order_id, for guest checkouts only (account orders follow their shop_customer_id);
- guest_email / the guest checkout email trimmed and lower-cased (placeholders left out). A shared
  role mailbox maps to every person who checked out with it.

`record_mess` says which records carry which identity mess (generator.identity_mess),
`lookalikes` which pairs of different people look alike on purpose (family, namesake, colleagues
on one role mailbox); `people` who everyone truly is. docs/generator-truth.md describes them.
"""

from __future__ import annotations

import polars as pl

from generator.mess import EMAIL_PLACEHOLDERS

PEOPLE_COLUMNS = ("person_id", "first_name", "last_name", "email", "phone", "birth_date", "country", "is_b2b",
                  "city", "postal_code", "personal_email", "new_phone", "other_surname", "other_surname_email",
                  "preferred_hour", "address")


def people_truth(people: pl.DataFrame) -> pl.DataFrame:
    """One row per true person: who they are, their main email (work address for B2B) and phone, and the
    other details their records may carry (personal address, the number taken later, another surname)."""
    return people.select(PEOPLE_COLUMNS)


def record_mess(*done: pl.DataFrame) -> pl.DataFrame:
    """(person_id, source, record_id, kind) for every record the identity mess hit, one row per kind."""
    return (pl.concat(done).select((pl.col("person_index") + 1).alias("person_id"), "source", "record_id", "kind")
            .sort("source", "record_id", "kind"))


def lookalikes(people: pl.DataFrame) -> pl.DataFrame:
    """(person_id, other_person_id, kind): different people who look alike on purpose, both ways round.

    family: one surname, address and phone; namesake: one first and last name in one city;
    role_mailbox: colleagues who type the company's shared mailbox (info@...).
    """
    pairs = [
        people.select("person_id", other_person_id="relative_of", kind=pl.lit("family")),
        people.select("person_id", other_person_id="namesake_of", kind=pl.lit("namesake")),
    ]
    mailbox = people.filter(pl.col("uses_role_mailbox")).select("person_id", "work_email")
    pairs.append(mailbox.join(mailbox, on="work_email", suffix="_other")
                 .select("person_id", other_person_id="person_id_other", kind=pl.lit("role_mailbox")))
    return (pl.concat(pairs).filter(pl.col("other_person_id").is_not_null()
                                    & (pl.col("person_id") != pl.col("other_person_id")))
            .sort("person_id", "other_person_id", "kind"))


def person_map(crm: pl.DataFrame, shop: pl.DataFrame, devices: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """(person_id, source, record_id) for every record id of the landing files."""
    guest = orders.filter(pl.col("is_guest"))
    email = pl.col("email").str.strip_chars().str.to_lowercase()
    parts = [
        crm.select("person_index", source=pl.lit("crm_contacts"), record_id="contact_id"),
        shop.select("person_index", source=pl.lit("shop_customers"), record_id="shop_customer_id"),
        devices.select("person_index", source=pl.lit("events"), record_id="anonymous_id"),
        guest.select("person_index", source=pl.lit("shop_orders"), record_id="order_id"),
        guest.select("person_index", source=pl.lit("guest_email"), record_id=email).filter(
            pl.col("record_id").str.contains("@", literal=True)
            & ~pl.col("record_id").is_in([p.lower() for p in EMAIL_PLACEHOLDERS])
        ),
    ]
    return (
        pl.concat(parts)
        .unique(maintain_order=True)
        .select((pl.col("person_index") + 1).alias("person_id"), "source", "record_id")
        .sort("source", "record_id", "person_id")
    )
