"""CRM contacts: leads and customers, B2C and B2B, with their lifecycle history.

Stages move lead -> mql -> sql -> customer (B2C customers usually skip mql/sql);
a contact's became_*_at timestamps are ordered and never later than as_of, and
people who bought are customers from (about) their first completed order. The
export is messy like a real CRM: ~5% of people have a second contact with other
spellings (imported from a fair, typed by a sales rep) and ~3% of contacts
appear twice as an older version (latest updated_at wins).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from generator import mess
from generator.clock import DAY, HOUR, MINUTE
from generator.streams import increasing_ids, pick

STAGES = ("subscriber", "lead", "mql", "sql", "customer", "other")
SUBSCRIBER, LEAD, MQL, SQL, CUSTOMER, OTHER = range(6)
LEAD_SOURCES = ("web_form", "event", "referral", "paid_search", "social", "partner", "import")
B2B_LEAD_SOURCES = (0.3, 0.15, 0.15, 0.1, 0.05, 0.15, 0.1)
B2C_LEAD_SOURCES = (0.45, 0.03, 0.1, 0.15, 0.2, 0.02, 0.05)
DUPLICATE_SHARE = 0.05
OLDER_VERSION_SHARE = 0.03


def contacts(rng: np.random.Generator, people: pl.DataFrame, first_purchase_at: np.ndarray, as_of: int) -> pl.DataFrame:
    """The CRM export: crm_contacts columns (timestamps in epoch s) plus person_index."""
    person = np.flatnonzero(people["in_crm"].to_numpy())
    n = len(person)
    who = people[person]
    b2b = who["is_b2b"].to_numpy()
    bought = first_purchase_at[person]

    stage = np.where(
        (bought >= 0) & (rng.random(n) < 0.9),
        CUSTOMER,
        np.where(b2b, np.array([SUBSCRIBER, LEAD, MQL, SQL, OTHER])[pick(rng, n, [0.1, 0.35, 0.25, 0.2, 0.1])],
                 np.array([SUBSCRIBER, LEAD, OTHER])[pick(rng, n, [0.55, 0.3, 0.15])]),
    )
    times = _lifecycle(rng, stage, b2b, bought, as_of)
    frame = pl.DataFrame(
        {
            "email": mess.with_placeholders(rng, mess.spell_emails(rng, who["email"], 0.3), 0.03,
                                            mess.EMAIL_PLACEHOLDERS),
            "phone": _sometimes(rng, 0.7, mess.with_placeholders(
                rng, mess.spell_phones(rng, who["phone"], who["country"]), 0.03, mess.PHONE_PLACEHOLDERS)),
            "first_name": mess.spell_names(rng, who["first_name"], 0.1),
            "last_name": mess.spell_names(rng, who["last_name"], 0.1),
            "company": mess.spell_names(rng, who["company"], 0.1),
            "job_title": who["job_title"],
            "country": _sometimes(rng, 0.9, who["country"]),
            "city": _sometimes(rng, 0.75, who["city"]),
            "birth_date": _sometimes(rng, 0.3, who["birth_date"]),
            "lifecycle_stage": pl.Series(STAGES).gather(stage),
            "lead_source": pl.Series(LEAD_SOURCES).gather(
                np.where(b2b, pick(rng, n, B2B_LEAD_SOURCES), pick(rng, n, B2C_LEAD_SOURCES))),
            **times,
            "person_index": person,
        }
    )
    frame = pl.concat([frame, _duplicates(rng, frame, who, as_of)])
    frame = frame.sort("created_at", maintain_order=True)
    frame = frame.with_columns(
        contact_id=pl.Series(increasing_ids(rng, frame.height, 100_000_000, 40)).cast(pl.String)
    )
    frame = pl.concat([frame, _older_versions(rng, frame)]).sort("contact_id", "updated_at", maintain_order=True)
    return frame.select(
        "contact_id", "email", "phone", "first_name", "last_name", "company", "job_title", "country", "city",
        "birth_date", "lifecycle_stage", "lead_source", "became_lead_at", "became_mql_at", "became_sql_at",
        "became_customer_at", "created_at", "updated_at", "person_index",
    )


def _sometimes(rng: np.random.Generator, share: float, values: pl.Series) -> pl.Series:
    return pl.select(pl.when(pl.lit(pl.Series(rng.random(len(values)) < share))).then(pl.lit(values))).to_series()


def _lifecycle(rng: np.random.Generator, stage: np.ndarray, b2b: np.ndarray, bought: np.ndarray,
               as_of: int) -> dict[str, pl.Series]:
    """became_*_at chained backwards from the current stage, then created_at and updated_at around them."""
    n = len(stage)
    floor = as_of - 6 * 365 * DAY
    recent = as_of - (rng.exponential(180, n) * DAY).astype(np.int64) - rng.integers(MINUTE, 6 * HOUR, n)
    latest = np.where(stage == CUSTOMER, bought + rng.integers(MINUTE, 2 * DAY, n), recent)
    latest = np.clip(latest, floor + 120 * DAY, as_of - MINUTE)

    def gap(days: float) -> np.ndarray:
        return (rng.exponential(days, n) * DAY).astype(np.int64) + HOUR

    full_funnel = b2b & (rng.random(n) < 0.85)
    customer = np.where(stage == CUSTOMER, latest, -1)
    has_sql = (stage == SQL) | ((stage == CUSTOMER) & full_funnel)
    sql = np.where(stage == SQL, latest, np.where(has_sql, customer - gap(20), -1))
    has_mql = (stage == MQL) | has_sql
    mql = np.where(stage == MQL, latest, np.where(has_mql, sql - gap(15), -1))
    has_lead = (
        (stage == LEAD) | has_mql | ((stage == CUSTOMER) & (rng.random(n) < 0.5)) | ((stage == OTHER) & (rng.random(n) < 0.3))
    )
    before_lead = np.where(has_mql, mql, np.where(stage == CUSTOMER, customer, latest))
    lead = np.where(stage == LEAD, latest, np.where(has_lead, before_lead - gap(25), -1))
    earliest = np.where(has_lead, lead, latest)
    created = np.maximum(earliest - np.where(has_lead, gap(10), 0), floor)
    # Clamping created_at to the floor must not break lead <= mql <= sql <= customer.
    lead = np.where(has_lead, np.maximum(lead, created), -1)
    mql = np.where(has_mql, np.maximum(mql, lead), -1)
    sql = np.where(has_sql, np.maximum(sql, mql), -1)
    updated = np.minimum(np.maximum(latest, created) + gap(20), as_of)

    def column(values: np.ndarray) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(values >= 0))).then(pl.lit(pl.Series(values)))).to_series()

    return {
        "became_lead_at": column(lead),
        "became_mql_at": column(mql),
        "became_sql_at": column(sql),
        "became_customer_at": column(customer),
        "created_at": pl.Series(created),
        "updated_at": pl.Series(updated),
    }


def _duplicates(rng: np.random.Generator, frame: pl.DataFrame, who: pl.DataFrame, as_of: int) -> pl.DataFrame:
    """A second contact for ~5% of people: imported later from a fair or list, spelled differently."""
    rows = np.flatnonzero(rng.random(frame.height) < DUPLICATE_SHARE)
    k = len(rows)
    same = who[rows]
    use_personal = same["is_b2b"].to_numpy() & (rng.random(k) < 0.5)
    email = pl.select(
        pl.when(pl.lit(pl.Series(use_personal))).then(pl.lit(same["personal_email"]))
        .when(pl.lit(pl.Series(rng.random(k) < 0.35))).then(None)
        .otherwise(pl.lit(same["email"]))
    ).to_series()
    created = np.minimum(frame["created_at"].to_numpy()[rows] + rng.integers(DAY, 700 * DAY, k), as_of - HOUR)
    stage = np.array([SUBSCRIBER, LEAD, OTHER])[pick(rng, k, [0.3, 0.5, 0.2])]
    null_ts = pl.repeat(None, k, eager=True, dtype=pl.Int64)
    lead = pl.select(pl.when(pl.lit(pl.Series(stage == LEAD))).then(pl.lit(pl.Series(created)))).to_series()
    misspell = rng.random(k) < 0.5
    first = pl.select(
        pl.when(pl.lit(pl.Series(misspell))).then(pl.lit(mess.misspell_names(rng, same["first_name"])))
        .otherwise(pl.lit(mess.spell_names(rng, same["first_name"], 0.5)))
    ).to_series()
    return frame[rows].with_columns(
        email=mess.spell_emails(rng, email, 0.6),
        phone=_sometimes(rng, 0.8, mess.spell_phones(rng, same["phone"], same["country"])),
        first_name=first,
        last_name=mess.spell_names(rng, same["last_name"], 0.4),
        birth_date=pl.repeat(None, k, eager=True, dtype=pl.Date),
        lifecycle_stage=pl.Series(STAGES).gather(stage),
        lead_source=pl.Series(["import", "event"]).gather(pick(rng, k, [0.6, 0.4])),
        became_lead_at=lead,
        became_mql_at=null_ts,
        became_sql_at=null_ts,
        became_customer_at=null_ts,
        created_at=pl.Series(created),
        updated_at=pl.Series(np.minimum(created + rng.integers(0, 3 * DAY, k), as_of)),
    )


def _older_versions(rng: np.random.Generator, frame: pl.DataFrame) -> pl.DataFrame:
    """The same contact exported before its latest change: one stage back, an earlier updated_at."""
    updated = frame["updated_at"].to_numpy()
    created = frame["created_at"].to_numpy()
    rows = np.flatnonzero((rng.random(frame.height) < OLDER_VERSION_SHARE) & (updated > created))
    k = len(rows)
    old = frame[rows]
    stage = old["lifecycle_stage"]
    # Step back one stage: the current stage's became_*_at is not set yet, the stage is the last one reached.
    column_of = {"customer": "became_customer_at", "sql": "became_sql_at", "mql": "became_mql_at",
                 "lead": "became_lead_at"}
    stepped = stage.is_in(list(column_of))
    updates = {
        column: pl.when(pl.lit(stage == current)).then(None).otherwise(pl.col(column))
        for current, column in column_of.items()
    }
    stamps = ("became_lead_at", "became_mql_at", "became_sql_at", "became_customer_at")
    current = old.select(pl.max_horizontal(*stamps)).to_series().fill_null(0).to_numpy()
    rolled = old.with_columns(**updates)
    reached = (
        pl.when(pl.col("became_sql_at").is_not_null()).then(pl.lit("sql"))
        .when(pl.col("became_mql_at").is_not_null()).then(pl.lit("mql"))
        .when(pl.col("became_lead_at").is_not_null()).then(pl.lit("lead"))
        .otherwise(pl.lit("subscriber"))
    )
    was = rolled.select(pl.when(pl.lit(stepped)).then(reached).otherwise(pl.col("lifecycle_stage"))).to_series()
    previous = rolled.select(pl.max_horizontal(*stamps)).to_series().fill_null(0).to_numpy()
    # The older version was exported after the previous stage began and before the current one did.
    lower = np.maximum(created[rows], previous)
    upper = np.where(stepped.to_numpy(), current - 1, updated[rows] - 1)
    earlier = lower + (rng.random(k) * np.maximum(upper - lower, 0)).astype(np.int64)
    return rolled.with_columns(lifecycle_stage=was, updated_at=pl.Series(earlier))
