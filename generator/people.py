"""The true people behind every record: who they are, how to reach them, which systems know them.

This is the ground truth the messy sources are written from. Row i is person_id i + 1.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from generator import names, places
from generator.clock import DAY
from generator.companies import Companies, companies
from generator.streams import pick, unique_by_suffix, zipf_weights

B2B_SHARE = 0.12
FAMILY_PHONE_SHARE = 0.015  # people sharing a phone with one relative
BIRTHDAY_TODAY_SHARE = 0.003  # on top of the ~1/365 who are born on as_of's day anyway
NAMESAKE_SHARE = 0.02  # people given the full name and city of someone else (two Maria Rossi in Milano)
PHONE_CHANGE_SHARE = 0.07  # people with a phone who took a new number in the last four years
OTHER_SURNAME_SHARE = 0.05  # women over 30 whose shop account goes by another surname (a husband's, a maiden one)

# Personal address patterns: first.last, firstlast, f.last, first.last85, first_last, last.first, first123, flast85.
EMAIL_PATTERN_WEIGHTS = (0.34, 0.15, 0.1, 0.13, 0.08, 0.08, 0.07, 0.05)


def people(rng: np.random.Generator, n: int, as_of: int) -> pl.DataFrame:
    """`n` people with identity, contact details, B2B employer and which sources know them."""
    codes = list(places.COUNTRY_SHARES)
    country_idx = pick(rng, n, list(places.COUNTRY_SHARES.values()))
    is_b2b = rng.random(n) < B2B_SHARE
    b2b_rows = np.flatnonzero(is_b2b)
    biz = companies(rng, len(b2b_rows))
    company_of = np.full(n, -1, dtype=np.int64)
    company_of[b2b_rows] = biz.member_company
    company_country = biz.frame["country"].replace_strict({c: i for i, c in enumerate(codes)}).to_numpy()
    country_idx[b2b_rows] = company_country[biz.member_company]

    female = rng.random(n) < 0.5
    first = pl.repeat("", n, eager=True, dtype=pl.String)
    last = pl.repeat("", n, eager=True, dtype=pl.String)
    for ci, code in enumerate(codes):
        for gender, mask in (("M", ~female), ("F", female)):
            rows = np.flatnonzero((country_idx == ci) & mask)
            pool = names.FIRST_NAMES[code][gender]
            first.scatter(rows, pl.Series(pool).gather(pick(rng, len(rows), zipf_weights(len(pool), 0.8))))
        rows = np.flatnonzero(country_idx == ci)
        pool, weights = names.surnames(code)
        last.scatter(rows, pl.Series(pool).gather(pick(rng, len(rows), weights)))

    city, postal = _addresses(rng, country_idx, codes)
    in_company = company_of >= 0
    city.scatter(b2b_rows, biz.frame["city"].gather(biz.member_company))
    postal.scatter(b2b_rows, biz.frame["postal_code"].gather(biz.member_company))

    # Numbers for everyone and, drawn in the same go so they are unique too, for those who change later.
    moving = np.flatnonzero(rng.random(n) < PHONE_CHANGE_SHARE)
    numbers = _phones(rng, np.concatenate([country_idx, country_idx[moving]]), codes)
    phone, spare = numbers.slice(0, n), numbers.slice(n)
    has_phone = rng.random(n) < np.where(is_b2b, 0.95, 0.8)
    phone = pl.select(pl.when(pl.Series(has_phone)).then(phone)).to_series()

    # A family: two people at the same address with one phone and one surname.
    candidates = rng.permutation(np.flatnonzero(~is_b2b & has_phone))
    k = min(int(n * FAMILY_PHONE_SHARE / 2), len(candidates) // 2)
    if n >= 20:
        k = max(k, 1)
    head, relative = candidates[:k], candidates[k : 2 * k]
    for column in (phone, last, city, postal):
        column.scatter(relative, column.gather(head))
    country_idx[relative] = country_idx[head]
    family_phone = np.zeros(n, dtype=bool)
    family_phone[head] = family_phone[relative] = True

    relative_of = np.full(n, -1, dtype=np.int64)
    relative_of[head], relative_of[relative] = relative, head
    namesake_of = _namesakes(rng, ~is_b2b & ~family_phone, female, country_idx, (first, last, city, postal))

    country = pl.Series(codes).gather(country_idx)
    birth_date = _birth_dates(rng, n, as_of)
    frame = pl.DataFrame(
        {
            "person_id": np.arange(1, n + 1, dtype=np.int64),
            "first_name": first,
            "last_name": last,
            "gender": np.where(female, "F", "M"),
            "birth_date": birth_date,
            "country": country,
            "city": city,
            "postal_code": postal,
            "phone": phone,
            "family_phone": family_phone,
            "relative_of": _person_id(relative_of),
            "namesake_of": _person_id(namesake_of),
            "is_b2b": is_b2b,
        }
    )
    other_surname = _other_surnames(rng, frame, country_idx, codes, as_of)
    personal, alias = _personal_emails(rng, frame, rng.random(n) < np.where(is_b2b, 0.6, 0.92), other_surname)
    work, role = _work_emails(rng, frame, biz, b2b_rows)
    frame = frame.with_columns(
        personal_email=personal,
        work_email=work,
        uses_role_mailbox=role,
        company=pl.select(pl.when(pl.Series(in_company)).then(
            biz.frame["name"].gather(np.maximum(company_of, 0)) if biz.frame.height else None)
        ).to_series().cast(pl.String),
        job_title=pl.select(
            pl.when(pl.Series(in_company)).then(
                pl.Series(names.JOB_TITLES).gather(pick(rng, n, zipf_weights(len(names.JOB_TITLES), 0.6)))
            )
        ).to_series().cast(pl.String),
        company_id=pl.select(pl.when(pl.Series(in_company)).then(pl.Series(company_of))).to_series(),
    ).with_columns(
        email=pl.coalesce("work_email", "personal_email"),  # how the business knows them: work address first
        shop_email=pl.coalesce("personal_email", "work_email"),  # what they shop with: personal address first
    )
    frame = frame.with_columns(**_reach(rng, frame))
    # A new number for some (records made after the change carry it), not for a family's shared phone.
    new_phone = pl.repeat(None, n, eager=True, dtype=pl.String).scatter(moving, spare)
    new_phone = pl.select(pl.when(pl.Series(has_phone & ~family_phone)).then(new_phone)).to_series()
    changed_at = as_of - (rng.random(n) * 4 * 365 * DAY).astype(np.int64)
    return frame.with_columns(
        new_phone=new_phone,
        phone_changed_at=pl.select(pl.when(new_phone.is_not_null()).then(pl.Series(changed_at))).to_series(),
        other_surname=other_surname,
        other_surname_email=alias,
    )


def _person_id(index: np.ndarray) -> pl.Series:
    """Row indexes (-1 for none) as person ids (null for none)."""
    return pl.Series(np.where(index >= 0, index + 1, 0)).replace(0, None)


def _namesakes(rng: np.random.Generator, eligible: np.ndarray, female: np.ndarray, country_idx: np.ndarray,
               columns: tuple[pl.Series, ...]) -> np.ndarray:
    """Give a few people the full name and city of someone else (in place); return whose namesake each one is.

    Common names are common already (Zipf); these pairs make sure the same name in the same
    city is there on purpose, with different birth dates, emails and phones: a hard negative.
    """
    n = len(eligible)
    namesake_of = np.full(n, -1, dtype=np.int64)
    # Pairs within one country, so the copied name and city go with the person's own phone and email domains.
    pairs = [np.empty(0, dtype=np.int64)] * 2
    for ci in np.unique(country_idx):
        pool = rng.permutation(np.flatnonzero(eligible & (country_idx == ci)))
        k = min(int(len(pool) * NAMESAKE_SHARE / 2), len(pool) // 2)
        pairs = [np.concatenate([pairs[0], pool[:k]]), np.concatenate([pairs[1], pool[k : 2 * k]])]
    original, copy = pairs
    for column in columns:
        column.scatter(copy, column.gather(original))
    female[copy] = female[original]
    namesake_of[copy], namesake_of[original] = original, copy
    return namesake_of


def _other_surnames(rng: np.random.Generator, frame: pl.DataFrame, country_idx: np.ndarray, codes: list[str],
                    as_of: int) -> pl.Series:
    """Another surname (a husband's, a maiden one) for some women over 30: their shop account goes by it."""
    n = frame.height
    age = (as_of // DAY - frame["birth_date"].cast(pl.Int64).to_numpy()) / 365.25
    other = (frame["gender"].to_numpy() == "F") & (age > 30) & ~frame["is_b2b"].to_numpy()
    other &= rng.random(n) < OTHER_SURNAME_SHARE
    surname = pl.repeat(None, n, eager=True, dtype=pl.String)
    for ci, code in enumerate(codes):
        rows = np.flatnonzero(other & (country_idx == ci))
        pool, weights = names.surnames(code)
        surname.scatter(rows, pl.Series(pool).gather(pick(rng, len(rows), weights)))
    return pl.select(pl.when(surname != frame["last_name"]).then(surname)).to_series()


def _addresses(rng: np.random.Generator, country_idx: np.ndarray, codes: list[str]) -> tuple[pl.Series, pl.Series]:
    n = len(country_idx)
    city = pl.repeat("", n, eager=True, dtype=pl.String)
    postal = pl.repeat("", n, eager=True, dtype=pl.String)
    letters = pl.Series(list("ABCDEGHJKLMNPRSTVWXZ"))
    for ci, code in enumerate(codes):
        rows = np.flatnonzero(country_idx == ci)
        cities = places.CITIES[code]
        which = pick(rng, len(rows), [c.weight for c in cities])
        city.scatter(rows, pl.Series([c.name for c in cities]).gather(which))
        base = np.array([c.postal_base for c in cities])[which]
        span = np.array([c.postal_span for c in cities])[which]
        digits = pl.Series((base + (rng.random(len(rows)) * span).astype(np.int64)).astype(str))
        code_text = digits.str.zfill(places.POSTAL_DIGITS[code])
        if code == "NL":
            code_text = (
                code_text + " " + letters.gather(rng.integers(0, len(letters), len(rows)))
                + letters.gather(rng.integers(0, len(letters), len(rows)))
            )
        postal.scatter(rows, code_text)
    return city, postal


def _phones(rng: np.random.Generator, country_idx: np.ndarray, codes: list[str]) -> pl.Series:
    """One mobile number per person in E.164 (+393331234567), unique across people."""
    n = len(country_idx)
    phone = pl.repeat(None, n, eager=True, dtype=pl.String)
    todo = np.arange(n)
    for _ in range(16):
        for ci, code in enumerate(codes):
            rows = todo[country_idx[todo] == ci]
            plan = places.PHONE_PLANS[code]
            prefix = pl.Series(plan.mobile_prefixes).gather(rng.integers(0, len(plan.mobile_prefixes), len(rows)))
            subscriber = pl.Series(rng.integers(0, 10**plan.subscriber_digits, len(rows)).astype(str))
            # Mobile numbers never start their subscriber part with 0 in these plans.
            subscriber = subscriber.str.zfill(plan.subscriber_digits).str.replace(r"^0", "1")
            phone.scatter(rows, "+" + plan.country_code + prefix + subscriber)
        todo = np.flatnonzero(~phone.is_first_distinct().to_numpy())
        if not len(todo):
            break
    return phone


def _birth_dates(rng: np.random.Generator, n: int, as_of: int) -> pl.Series:
    """Adults up to 90, around a mean age of 44, birthdays spread over the year; a few born on as_of's day."""
    today = np.datetime64(as_of // DAY, "D")
    this_year = today.astype("datetime64[Y]").astype(np.int64) + 1970
    age = np.clip(rng.normal(44, 15, n), 19, 90).astype(np.int64)  # 19: everyone is an adult today
    year = this_year - age
    jan1 = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    day = jan1 + (rng.random(n) * np.where(leap, 366, 365)).astype(np.int64)

    # Birthdays today: as_of's month and day (in a leap year when as_of is 29 February).
    forced = rng.random(n) < BIRTHDAY_TODAY_SHARE
    if n >= 50:
        forced[rng.integers(0, n, 3)] = True
    now = date(1970, 1, 1) + timedelta(days=as_of // DAY)
    f_year = year - year % 4 if (now.month, now.day) == (2, 29) else year
    month_start = ((f_year - 1970) * 12 + now.month - 1).astype("datetime64[M]").astype("datetime64[D]")
    day = np.where(forced, month_start.astype(np.int64) + now.day - 1, day)
    return pl.Series(day.astype(np.int32)).cast(pl.Date)


def _personal_emails(rng: np.random.Generator, frame: pl.DataFrame, has_email: np.ndarray,
                     other_surname: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Personal addresses, and first.other_surname at the same domain for those with another surname.

    Both are made unique in one go, so no alias is anyone's address.
    """
    n = frame.height
    pattern = pick(rng, n, EMAIL_PATTERN_WEIGHTS)
    parts = frame.select(
        f=names.ascii_slug(pl.col("first_name")),
        l=names.ascii_slug(pl.col("last_name")),
        yy=(pl.col("birth_date").dt.year() % 100).cast(pl.String).str.zfill(2),
    ).with_columns(
        p=pl.Series(pattern),
        num=pl.Series(rng.integers(1, 999, n)).cast(pl.String),
    )
    f, l_, yy, p = pl.col("f"), pl.col("l"), pl.col("yy"), pl.col("p")
    local = (
        pl.when(p == 0).then(f + "." + l_)
        .when(p == 1).then(f + l_)
        .when(p == 2).then(f.str.slice(0, 1) + "." + l_)
        .when(p == 3).then(f + "." + l_ + yy)
        .when(p == 4).then(f + "_" + l_)
        .when(p == 5).then(l_ + "." + f)
        .when(p == 6).then(f + pl.col("num"))
        .otherwise(f.str.slice(0, 1) + l_ + yy)
    )
    stems = parts.select(local).to_series()
    domain = pl.repeat("", n, eager=True, dtype=pl.String)
    codes = frame["country"].to_numpy()
    for code, shares in places.EMAIL_DOMAINS.items():
        rows = np.flatnonzero(codes == code)
        domain.scatter(rows, "@" + pl.Series(list(shares)).gather(pick(rng, len(rows), list(shares.values()))))
    stems = pl.select(pl.when(pl.Series(has_email)).then(stems)).to_series()
    rows = np.flatnonzero((stems.is_not_null() & other_surname.is_not_null()).to_numpy())
    alias = pl.repeat(None, n, eager=True, dtype=pl.String).scatter(rows, pl.select(
        names.ascii_slug(pl.lit(frame["first_name"].gather(rows))) + "."
        + names.ascii_slug(pl.lit(other_surname.gather(rows)))).to_series())
    both = unique_by_suffix(rng, pl.concat([stems, alias]), pl.concat([domain, domain]))
    return both.slice(0, n), both.slice(n)


def _work_emails(rng: np.random.Generator, frame: pl.DataFrame, biz: Companies,
                 b2b_rows: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """Work addresses at the company domain; some people use the company's role mailbox instead."""
    n = frame.height
    company = biz.member_company
    rows = frame[b2b_rows]
    pattern = pl.Series(biz.email_pattern[company])
    f, l_, p = names.ascii_slug(pl.col("first_name")), names.ascii_slug(pl.col("last_name")), pl.col("p")
    stems = (
        rows.with_columns(p=pattern)
        .select(
            pl.when(p == 0).then(f + "." + l_)
            .when(p == 1).then(f.str.slice(0, 1) + "." + l_)
            .when(p == 2).then(f)
            .otherwise(l_)
        )
        .to_series()
    )
    domain = "@" + biz.frame["domain"].gather(company)
    own = unique_by_suffix(rng, stems, domain)
    mailbox = biz.frame["role_mailbox"].gather(company)
    chosen = pl.select(pl.when(pl.Series(biz.uses_role_mailbox)).then(mailbox).otherwise(own)).to_series()
    work = pl.repeat(None, n, eager=True, dtype=pl.String).scatter(b2b_rows, chosen)
    role = np.zeros(n, dtype=bool)
    role[b2b_rows] = biz.uses_role_mailbox
    return work, pl.Series(role)


def _reach(rng: np.random.Generator, frame: pl.DataFrame) -> dict[str, pl.Series]:
    """Which systems know each person: CRM, a shop account, guest checkouts, or only the website."""
    n = frame.height
    b2b = frame["is_b2b"].to_numpy()
    has_email = frame["email"].is_not_null().to_numpy()
    in_crm = rng.random(n) < np.where(b2b, 0.92, np.where(has_email, 0.55, 0.35))
    in_shop = rng.random(n) < np.where(b2b, 0.4, 0.75)
    guest_buyer = ~in_shop & has_email & (rng.random(n) < 0.5)
    return {
        "in_crm": pl.Series(in_crm),
        "in_shop": pl.Series(in_shop),
        "guest_buyer": pl.Series(guest_buyer),
        "visitor_only": pl.Series(~in_crm & ~in_shop & ~guest_buyer),
    }
