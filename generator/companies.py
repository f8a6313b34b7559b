"""The retailer's business customers: bars, hotels, offices and shops, with their domains and shared mailboxes.

Company sizes follow a short geometric tail (most have 1-3 contacts, a few have
dozens). Some companies with three or more contacts have a role mailbox
(info@, amministrazione@...) that 3-6 of their people type into every form:
the classic trap for identity resolution by email.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator import names, places
from generator.streams import pick, unique_by_suffix, zipf_weights

ROLE_MAILBOX_SHARE = 0.45  # of companies with 3+ contacts
LEGAL_SUFFIXES = (" s.r.l.", " s.p.a.", " s.n.c.", " s.a.s.", " gmbh", " sarl", " sas", " s.l.", " s.a.",
                  " b.v.", " & co. kg", " og", " & figli", " & fils", " & söhne", " y asociados", " & c.")


@dataclass(frozen=True)
class Companies:
    frame: pl.DataFrame  # one row per company: name, domain, country, city, postal_code, role_mailbox
    member_company: np.ndarray  # company index of each business person, in person order
    uses_role_mailbox: np.ndarray  # whether that person signs up with the company's role mailbox
    email_pattern: np.ndarray  # per company: 0 first.last, 1 f.last, 2 first, 3 last


def companies(rng: np.random.Generator, n_members: int) -> Companies:
    """Companies for `n_members` business people, and which company each of them works for."""
    sizes = np.minimum(1 + rng.negative_binomial(1, 0.4, max(n_members, 1)), 40)
    n = int(np.searchsorted(np.cumsum(sizes), n_members) + 1) if n_members else 0
    sizes = sizes[:n]
    member_company = np.repeat(np.arange(n), sizes)[:n_members]
    sizes = np.bincount(member_company, minlength=n)
    rank = np.arange(n_members) - np.repeat(np.cumsum(sizes) - sizes, sizes)

    codes = list(places.COUNTRY_SHARES)
    country_weights = [0.85 if c == "IT" else 0.15 / (len(codes) - 1) for c in codes]
    country_idx = pick(rng, n, country_weights)
    country = pl.Series(codes).gather(country_idx)

    template = pl.repeat("", n, eager=True, dtype=pl.String)
    last = pl.repeat("", n, eager=True, dtype=pl.String)
    last2 = pl.repeat("", n, eager=True, dtype=pl.String)
    city = pl.repeat("", n, eager=True, dtype=pl.String)
    postal = pl.repeat("", n, eager=True, dtype=pl.String)
    for ci, code in enumerate(codes):
        rows = np.flatnonzero(country_idx == ci)
        if not len(rows):
            continue
        patterns = names.COMPANY_PATTERNS[code]
        template = template.scatter(rows, pl.Series(patterns).gather(rng.integers(0, len(patterns), len(rows))))
        surnames = pl.Series(names.LAST_NAMES[code])
        weights = zipf_weights(len(surnames), 0.7)
        last = last.scatter(rows, surnames.gather(pick(rng, len(rows), weights)))
        last2 = last2.scatter(rows, surnames.gather(pick(rng, len(rows), weights)))
        cities = places.CITIES[code]
        which = pick(rng, len(rows), [c.weight for c in cities])
        city = city.scatter(rows, pl.Series([c.name for c in cities]).gather(which))
        base = np.array([c.postal_base for c in cities])[which]
        span = np.array([c.postal_span for c in cities])[which]
        code_digits = (base + (rng.random(len(rows)) * span).astype(np.int64)).astype(str)
        postal = postal.scatter(rows, pl.Series(code_digits).str.zfill(places.POSTAL_DIGITS[code]))

    frame = pl.DataFrame(
        {
            "template": template,
            "last": last,
            "last2": last2,
            "place": pl.Series(names.COMPANY_PLACES).gather(rng.integers(0, len(names.COMPANY_PLACES), n)),
            "region": pl.Series(names.COMPANY_REGIONS).gather(rng.integers(0, len(names.COMPANY_REGIONS), n)),
            "sector": pl.Series(names.COMPANY_SECTORS).gather(rng.integers(0, len(names.COMPANY_SECTORS), n)),
            "country": country,
            "city": city,
            "postal_code": postal,
        }
    ).with_columns(
        name=pl.col("template")
        .str.replace("{last}", pl.col("last"), literal=True)
        .str.replace("{last2}", pl.col("last2"), literal=True)
        .str.replace("{place}", pl.col("place"), literal=True)
        .str.replace("{region}", pl.col("region"), literal=True)
        .str.replace("{sector}", pl.col("sector"), literal=True)
    )
    core = pl.col("name").str.to_lowercase().str.replace_many(list(LEGAL_SUFFIXES), [""] * len(LEGAL_SUFFIXES))
    stems = frame.select(names.ascii_slug(core).str.replace_all(r"[^a-z0-9]", "")).to_series()
    tlds = frame.select("." + pl.col("country").replace_strict(places.BUSINESS_TLD)).to_series()
    # Namesakes in other towns add the town to their domain (barcentrale-verona.it), then digits.
    city_slug = frame.select(names.ascii_slug(pl.col("city")).str.replace_all(r"[^a-z0-9]", "")).to_series()
    taken = ~(stems + tlds).is_first_distinct()
    stems = pl.select(pl.when(taken).then(stems + "-" + city_slug).otherwise(stems)).to_series()
    domain = unique_by_suffix(rng, stems, tlds)

    # Role mailboxes: some companies with 3+ contacts share one address among 3-6 of them.
    has_mailbox = (sizes >= 3) & (rng.random(n) < ROLE_MAILBOX_SHARE)
    if not has_mailbox.any() and (sizes >= 3).any():
        has_mailbox[np.argmax(sizes >= 3)] = True
    mailbox_users = np.where(has_mailbox, np.minimum(sizes, rng.integers(3, 7, n)), 0)
    prefix = pl.repeat("", n, eager=True, dtype=pl.String)
    for ci, code in enumerate(codes):
        rows = np.flatnonzero(country_idx == ci)
        boxes = names.ROLE_MAILBOXES[code]
        prefix = prefix.scatter(rows, pl.Series(boxes).gather(pick(rng, len(rows), zipf_weights(len(boxes), 1.2))))
    role_mailbox = pl.select(pl.when(pl.Series(has_mailbox)).then(prefix + "@" + domain)).to_series()

    frame = frame.select("name", "country", "city", "postal_code").with_columns(
        domain=domain, role_mailbox=role_mailbox
    )
    return Companies(
        frame=frame,
        member_company=member_company,
        uses_role_mailbox=rank < mailbox_users[member_company] if n_members else np.zeros(0, dtype=bool),
        email_pattern=pick(rng, n, [0.5, 0.25, 0.15, 0.1]),
    )
