"""How real exports get it wrong: spellings, placeholders and malformed rows, at known rates.

Every source writes the same person a little differently (case, spaces, phone
formats); a few percent of identifier fields hold placeholders; and about 0.2%
of each file's rows are broken (bad dates, a required field missing, a missing
or extra CSV field, a truncated JSON line). The identity-resolution SQL is tuned
against these rates, so they live here, in one place.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from activations.ingest.contract import Source
from generator.names import DOMAIN_TYPOS
from generator.streams import pick

EMAIL_PLACEHOLDERS = ("", "n/a", "N/A", "test@test.com", "noemail@example.com", "none@none.it", "-")
PHONE_PLACEHOLDERS = ("", "n/a", "N/A", "0000000000", "000", "-", "1234567890")
BAD_DATES = ("31/02/2024", "not a date", "2024-13-45", "0000-00-00 00:00:00", "2023-02-29T25:61:00Z")
BAD_NUMBERS = ("12,50", "n/a", "€ 9.90", "two", "1.2.3")

BAD_VALUE_SHARE = 0.0005  # rows with an unparseable date (or number, where a source has no dates)
MISSING_REQUIRED_SHARE = 0.0005  # rows with one required field empty
BROKEN_LINE_SHARE = 0.001  # rows whose line is broken: CSV field count off by one, JSON truncated
MIN_PER_KIND = 1  # even a 200-row file gets a few broken rows of every kind
MIN_BROKEN_LINES = 2  # one missing field, one extra

# Phone spellings: (weight for Italian numbers, weight for foreign numbers). Foreign numbers always
# keep their country code, because the contract assumes +39 when none is given.
PHONE_STYLES = {
    "spaced_plus": (0.2, 0.35),  # +39 333 1234567
    "double_zero": (0.08, 0.25),  # 0039 3331234567
    "dashed": (0.1, 0.0),  # 333-123-4567
    "national": (0.3, 0.0),  # 3331234567
    "e164": (0.15, 0.3),  # +393331234567
    "national_spaced": (0.12, 0.0),  # 333 1234567
    "plus_dash": (0.05, 0.1),  # +39-333-1234567
}


def _respell(values: pl.Series, rows: np.ndarray, spelled: pl.Series) -> pl.Series:
    """`values` with the given rows replaced (only the messy rows are worked on: it is faster)."""
    return values.clone().scatter(rows, spelled) if len(rows) else values


def spell_emails(rng: np.random.Generator, emails: pl.Series, messiness: float) -> pl.Series:
    """Emails as people type them: `messiness` of rows get capitals or surrounding spaces."""
    rows = np.flatnonzero(rng.random(len(emails)) < messiness)
    frame = pl.DataFrame({"e": emails.gather(rows), "s": pick(rng, len(rows), [0.3, 0.25, 0.1, 0.07, 0.18, 0.1])})
    parts = pl.col("e").str.split_exact("@", 1)
    local, domain = parts.struct.field("field_0"), parts.struct.field("field_1")
    capital = local.str.slice(0, 1).str.to_uppercase() + local.str.slice(1)
    domain_cap = domain.str.slice(0, 1).str.to_uppercase() + domain.str.slice(1)
    s = pl.col("s")
    spelled = (
        pl.when(domain.is_null()).then(pl.col("e"))
        .when(s == 0).then(capital + "@" + domain)  # Mario.rossi@gmail.com
        .when(s == 1).then(local.str.to_titlecase() + "@" + domain)  # Mario.Rossi@gmail.com
        .when(s == 2).then(pl.col("e").str.to_titlecase())  # Mario.Rossi@Gmail.Com
        .when(s == 3).then(pl.col("e").str.to_uppercase())  # MARIO.ROSSI@GMAIL.COM
        .when(s == 4).then("  " + local.str.to_titlecase() + "@" + domain_cap + " ")  # "  Mario.Rossi@Gmail.com "
        .otherwise(pl.col("e") + " ")
    )
    return _respell(emails, rows, frame.select(spelled).to_series())


def spell_phones(rng: np.random.Generator, phones: pl.Series, countries: pl.Series) -> pl.Series:
    """E.164 numbers (+393331234567) in the spellings people use: +39 333 1234567, 0039..., 333-123-4567."""
    n = len(phones)
    domestic = pick(rng, n, [w[0] for w in PHONE_STYLES.values()])
    foreign = pick(rng, n, [w[1] for w in PHONE_STYLES.values()])
    style = np.where((countries == "IT").to_numpy(), domestic, foreign)
    # Each style is lead + first three digits + separator + the rest; only "dashed" splits the rest again.
    lead = ("+{} ", "00{} ", "", "", "+{}", "", "+{}-")
    separator = (" ", "", "-", "", "", " ", "-")
    frame = pl.DataFrame(
        {
            "p": phones,
            "before": pl.Series([s.split("{}")[0] for s in lead]).gather(style),
            "after": pl.Series([s.split("{}")[-1] if "{}" in s else "" for s in lead]).gather(style),
            "with_cc": pl.Series(["{}" in s for s in lead]).gather(style),
            "sep": pl.Series(separator).gather(style),
            "dashed": pl.Series(style == list(PHONE_STYLES).index("dashed")),
        }
    )
    nsn = pl.col("p").str.slice(3)
    rest = nsn.str.slice(3)
    cc = pl.when(pl.col("with_cc")).then(pl.col("p").str.slice(1, 2)).otherwise(pl.lit(""))
    rest = pl.when(pl.col("dashed")).then(rest.str.slice(0, 3) + "-" + rest.str.slice(3)).otherwise(rest)
    spelled = pl.col("before") + cc + pl.col("after") + nsn.str.slice(0, 3) + pl.col("sep") + rest
    return frame.select(spelled.alias(phones.name)).to_series()


def spell_names(rng: np.random.Generator, names: pl.Series, messiness: float) -> pl.Series:
    """Names as typed: `messiness` of rows in capitals, lower case, with stray spaces or a keyboard accent."""
    rows = np.flatnonzero(rng.random(len(names)) < messiness)
    frame = pl.DataFrame({"v": names.gather(rows), "s": pick(rng, len(rows), [0.3, 0.25, 0.15, 0.15, 0.15])})
    v, s = pl.col("v"), pl.col("s")
    spelled = (
        pl.when(s == 0).then(v.str.to_uppercase())  # ROSSI
        .when(s == 1).then(v.str.to_lowercase())  # rossi
        .when(s == 2).then("  " + v + " ")  # "  Rossi "
        .when(s == 3).then(v.str.replace(" ", "  ", literal=True) + " ")  # "De  Luca "
        # Italian keyboards without accented capitals: Niccolò -> Niccolo', D'Angelo -> D’Angelo.
        .otherwise(v.str.replace_many(["ò", "à", "è", "ù", "ì", "'"], ["o'", "a'", "e'", "u'", "i'", "’"]))
    )
    return _respell(names, rows, frame.select(spelled).to_series())


def misspell_names(rng: np.random.Generator, names: pl.Series) -> pl.Series:
    """A stronger variant for duplicate records: an initial, a dropped letter, or a lost accent."""
    n = len(names)
    frame = pl.DataFrame({"v": names, "s": pl.Series(pick(rng, n, [0.25, 0.4, 0.35])),
                          "cut": pl.Series(rng.random(n))})
    v, s = pl.col("v"), pl.col("s")
    cut = (1 + pl.col("cut") * (v.str.len_chars() - 2).clip(lower_bound=0)).cast(pl.Int64)
    spelled = (
        pl.when(v.str.len_chars() < 4).then(v)
        .when(s == 0).then(v.str.slice(0, 1) + ".")  # M.
        .when(s == 1).then(v.str.slice(0, cut) + v.str.slice(cut + 1))  # Gioanni
        .otherwise(v.str.replace_many(["ò", "à", "è", "é", "ù", "ì", "ü", "ö", "'"],
                                      ["o", "a", "e", "e", "u", "i", "u", "o", ""]))  # Niccolo, DAngelo
    )
    return frame.select(spelled.alias(names.name)).to_series()


EMAIL_TYPOS = ("swap", "drop", "double", "domain")  # mraio.rossi, mrio.rossi, marrio.rossi, mario.rossi@gmial.com


def typo_emails(emails: pl.Series, style: np.ndarray, where: np.ndarray, which: np.ndarray,
                taken: pl.Series) -> pl.Series:
    """Clean, lower-case `emails` with one slip each: two letters swapped, one dropped or doubled, a wrong domain.

    `style` indexes EMAIL_TYPOS; `where` (0..1) says which letter; `which` picks the domain typo. The
    draws are the caller's, so every version of one record gets the same slip. A slip that lands on
    an address in `taken` (someone's real one), changes nothing or is no valid address (d..grasso)
    becomes a letter dropped from the domain name (gmai.com), which no one owns.
    """
    frame = pl.DataFrame({"e": emails, "s": pl.Series(style, dtype=pl.Int64), "w": pl.Series(where),
                          "k": pl.Series(which, dtype=pl.Int64)})
    typos = pl.DataFrame({"domain": list(DOMAIN_TYPOS), "options": list(DOMAIN_TYPOS.values())})
    parts = pl.col("e").str.split_exact("@", 1)
    frame = frame.with_columns(local=parts.struct.field("field_0"), domain=parts.struct.field("field_1")).join(
        typos, on="domain", how="left", maintain_order="left")
    local, domain, s = pl.col("local"), pl.col("domain"), pl.col("s")
    i = (1 + pl.col("w") * (local.str.len_chars() - 2).clip(lower_bound=0)).cast(pl.Int64)
    label = domain.str.split(".").list.first()
    j = (1 + pl.col("w") * (label.str.len_chars() - 1).clip(lower_bound=0)).cast(pl.Int64)
    lost_letter = local + "@" + domain.str.slice(0, j) + domain.str.slice(j + 1)  # gmai.com
    mapped = pl.col("options").list.get(pl.col("k") % pl.col("options").list.len(), null_on_oob=True)
    slipped = (
        pl.when(local.str.len_chars() < 3).then(lost_letter)
        .when(s == 0).then(local.str.slice(0, i) + local.str.slice(i + 1, 1) + local.str.slice(i, 1)
                           + local.str.slice(i + 2) + "@" + domain)
        .when(s == 1).then(local.str.slice(0, i) + local.str.slice(i + 1) + "@" + domain)
        .when(s == 2).then(local.str.slice(0, i + 1) + local.str.slice(i, 1) + local.str.slice(i + 1) + "@" + domain)
        .otherwise(pl.coalesce(local + "@" + mapped, lost_letter))
    )
    out = frame.with_columns(t=slipped, lost=lost_letter).with_row_index("i")
    # a semi-join, not is_in: hashing the few typos beats hashing everyone's address (3x faster at 1M)
    owned = out.join(pl.DataFrame({"t": taken}), on="t", how="semi")["i"]
    return out.select(
        pl.when((pl.col("t") == pl.col("e")) | pl.col("i").is_in(owned.implode())
                | pl.col("t").str.contains(r"\.\.|\.@|^\.")).then(pl.col("lost"))
        .otherwise(pl.col("t")).alias(emails.name)).to_series()


def with_placeholders(rng: np.random.Generator, values: pl.Series, share: float, pool: tuple[str, ...]) -> pl.Series:
    """`share` of rows replaced by a placeholder from `pool` (n/a, test@test.com, 0000000000...)."""
    rows = np.flatnonzero(rng.random(len(values)) < share)
    return _respell(values, rows, pl.Series(pool).gather(rng.integers(0, len(pool), len(rows))))


def malform(rng: np.random.Generator, frame: pl.DataFrame, source: Source) -> tuple[pl.DataFrame, np.ndarray]:
    """Break a few rows: bad dates (or numbers), a required field emptied; return rows to break at line level.

    `frame` holds the source's columns rendered as export text. The returned positions are rows
    the writer breaks structurally (a missing or extra CSV field, a truncated JSON object). The
    three kinds hit different rows, so each is present in every file.
    """
    n = frame.height
    by_type = {c.name: c.type for c in source.columns}
    temporal = [c for c, t in by_type.items() if t in ("date", "timestamp")]
    numeric = [c for c, t in by_type.items() if t in ("double", "bigint") and frame[c].dtype == pl.String]
    targets, pool = (temporal, BAD_DATES) if temporal else (numeric, BAD_NUMBERS)
    required = [c.name for c in source.columns if c.required]

    def count(share: float, minimum: int) -> int:
        return max(minimum, int(round(n * share)))

    sizes = [count(BAD_VALUE_SHARE, MIN_PER_KIND) if targets else 0, count(MISSING_REQUIRED_SHARE, MIN_PER_KIND),
             count(BROKEN_LINE_SHARE, MIN_BROKEN_LINES)]
    if sum(sizes) > n // 2:  # a tiny file: break at most half of it
        sizes = [min(s, 1) for s in sizes]
    chosen = rng.choice(n, min(n, sum(sizes)), replace=False)
    bad_rows, empty_rows, broken = np.split(chosen, np.cumsum(sizes)[:2])

    updates: dict[str, pl.Expr] = {}
    column = rng.integers(0, max(len(targets), 1), len(bad_rows))
    bad = pl.Series(pool).gather(rng.integers(0, len(pool), len(bad_rows)))
    for ti, name in enumerate(targets):
        hit = column == ti
        if hit.any():
            values = pl.repeat(None, n, eager=True, dtype=pl.String).scatter(bad_rows[hit], bad.filter(pl.Series(hit)))
            updates[name] = pl.coalesce(pl.lit(values), pl.col(name))
    column = rng.integers(0, len(required), len(empty_rows))
    for ri, name in enumerate(required):
        mask = np.zeros(n, dtype=bool)
        mask[empty_rows[column == ri]] = True
        if mask.any():
            updates[name] = pl.when(pl.lit(pl.Series(mask))).then(None).otherwise(updates.get(name, pl.col(name)))
    return (frame.with_columns(**updates) if updates else frame), np.sort(broken)
