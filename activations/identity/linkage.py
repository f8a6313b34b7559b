"""Probabilistic record linkage of person records (Splink on DuckDB).

Scores pairs of person records the deterministic rules leave apart, with a Fellegi-Sunter
model: each comparison (names, birth date, address, city, postcode, phone, email) puts a
pair in one level, each level carries m (how often true matches land there) and u (how
often non-matches do), and the pair's match weight is the sum of log2(m/u). A None value
(missing, or set aside by the deterministic guards as placeholder/shared) lands in the
null level, whose weight is 0: a veto'd identifier never supports a match.

m/u come from the customer's own data without labels (u by random sampling, m by EM, both
with fixed seeds); under `LinkageSettings.min_records_to_train` records they come from the
fixed priors below. A trained model is a JSON-able dict (`train_model`, `save_model`,
`load_model`); pass it as `LinkageSettings.model` so scoring does not retrain.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from copy import deepcopy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.exceptions import EMTrainingException

from activations import settings as attiva_settings  # `settings` names the LinkageSettings parameters here
from activations.identity import spelling
from activations.identity.blocking import candidate_pairs

RECORD_COLUMNS = (
    "record_id",
    "source",
    "first_name",
    "last_name",
    "birth_date",
    "address",
    "city",
    "postcode",
    "phone",
    "email",
)
# Person records as score_pairs and train_model take them (a pyarrow.Table of RECORD_COLUMNS).
PERSON_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("source", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("birth_date", pa.date32()),
        ("address", pa.string()),
        ("city", pa.string()),
        ("postcode", pa.string()),
        ("phone", pa.string()),
        ("email", pa.string()),
    ]
)
# Splink keys the records by their number in record_id order (an integer joins faster than the
# id over millions of candidate pairs); the scored pairs are named by record_id again.
RECORD_NUMBER = "record_number"
PAIR_SCHEMA = pa.schema(
    [
        ("record_id_l", pa.string()),
        ("record_id_r", pa.string()),
        ("match_weight", pa.float64()),
        ("match_probability", pa.float64()),
        ("evidence", pa.string()),
        ("corroborated", pa.bool_()),
        ("contradicted", pa.bool_()),
    ]
)

# What a merge needs beyond the names and the place: names, city and postcode say "same name in
# the same place", which namesakes share, and an email's local part is often those names spelt
# into an address (giulia.fontana@ at two providers, or giulia.fontana4@ beside giulia.fontana@).
# A pair that agrees on nothing else waits for review however high its score: on the
# generator's people, 36 of 38 false merges at p >= 0.99 had nothing else.
CORROBORATING_LEVELS = {
    "birth_date": ("exact", "day-month transposed", "one part differs"),
    "phone": ("exact", "last 7 digits", "one digit off"),
    "email": ("exact",),
}
# An address is a household's, not a person's: a family shares it with its surname, city and
# postcode, which the model counts as independent evidence. So an address corroborates only beside
# the first name (or none on one side): at 20k generated people, address alone let 53 family pairs
# merge. Not "jw>0.80", nor a first name that changes only its last letter: Mario and Maria,
# Giulio and Giulia share a home. Another surname does not stop it: a married or maiden name
# (FEBRL rewrites surnames too); an office's address never gets here (matching.py leaves a business
# contact's address out). The same street at another number counts too, FEBRL rewrites house
# numbers (146 and 361 mccormack street, one person), but only in the same postcode: Via Garibaldi
# is in every Italian town, and a namesake across the city is someone else.
SAME_ADDRESS = {"address": ("exact", "same street and number")}
SAME_STREET = {"address": ("same street, other number",)}
# ...and an address is one only in one place: Via Roma 1 is in every Italian town. A city or a
# postcode that differs makes it another address, unless the other one agrees (FEBRL rewrites
# suburbs and postcodes, one at a time). The same street at another number needs the same
# postcode, or one typed wrong in the same city. At 20k generated people over two seeds, 6 of 6
# merges on the same street at another number without them, and 1 of 1 on one address in two
# cities, were two people (Calle Mayor in Madrid, Hauptstrasse in Hamburg and Düsseldorf).
SAME_CITY = {"city": ("exact", "jw>0.90")}
SAME_POSTCODE = {"postcode": ("exact", "one char off")}
OTHER_CITY = {"city": ("differs",)}
OTHER_POSTCODE = {"postcode": ("differs",)}
# ...but between two guest checkouts another surname at one address says nothing: an order ships
# to an office or to someone else's home, and colleagues of one first name ship to one office
# (at 20k generated people, 4 of 4 such merges over two seeds were two people; every other pair
# of sources with another surname at one address was one person, 49 of 49).
OTHER_SURNAME = {"last_name": ("jw>0.80", "differs")}
GUEST = "guest"  # the `source` of a guest checkout's record (activations/identity/matching.py)
SAME_FIRST_NAME = {"first_name": ("exact", "jw>0.92")}
# Both names written the other way round ("Pichler Michael"); the name comparison's swapped level
# also takes one crossing, which Maria Pichler shares with her husband's swapped record.
SWAPPED_NAMES = '("first_name_l" = "last_name_r" AND "last_name_l" = "first_name_r")'
# Giulio / Giulia, Francesco / Francesca, Simone / Simona: one stem, the last vowel says man or woman.
OTHER_GENDER = ('left("first_name_l", -1) = left("first_name_r", -1) '
                'AND right("first_name_l", 1) <> right("first_name_r", 1) '
                "AND right(\"first_name_l\", 1) IN ('a', 'e', 'i', 'o') AND right(\"first_name_r\", 1) IN ('a', 'e', 'i', 'o')")
# What sends a pair that does not merge away rather than to review: birth dates that differ in
# more than one part (not a typo, not day and month swapped). At 100k generated people the top
# of the review queue was namesakes born years apart. It does not stop a merge the rest of the
# evidence makes certain: one in fifteen FEBRL duplicates carries a birth date rewritten whole.
# ...and two addresses of their own at one provider, alike but not one slip apart
# (maria.rossi7@ beside maria.rossi@gmail.com): each picked theirs, as namesakes do. At 20k
# generated people (seed 42) 1,271 pairs in review agreed on names, city and such emails and
# nothing else: 3 were one person.
CONTRADICTING_LEVELS = {"birth_date": ("differs",), "email": ("local part jw>0.88, same domain",)}
# ...and a name that differs beside an address that differs: another person in another home,
# who shares a first or last name and the town (Maria Rossi and Maria Bianchi of one postcode).
# The model counts city and postcode as two facts, so such pairs reached p 0.8: 16,000 of the
# demo's 36,700 pairs in review; at 20k generated people 103 over two seeds, none one person.
# Not beside a birth date in common.
OTHER_HOME = ({"first_name": ("differs",), "last_name": ("differs",)}, {"address": ("differs",)})


def _one_edit(left: str, right: str, replaced: bool = True) -> str:
    """SQL: two different strings one Damerau-Levenshtein edit apart (a character dropped, added or
    swapped with the next, or with `replaced`, replaced). Written with levenshtein, six times
    cheaper than damerau_levenshtein, which is left for the swaps (a run scores millions of pairs)."""
    same_length = f"length({left}) = length({right})"
    changed = f"levenshtein({left}, {right}) = 1"
    if not replaced:
        changed = f"abs(length({left}) - length({right})) = 1 AND {changed}"
    swapped = f"{same_length} AND levenshtein({left}, {right}) = 2 AND damerau_levenshtein({left}, {right}) = 1"
    return f"(({changed}) OR ({swapped}))"


# An email with one slip also corroborates: a letter swapped, dropped or doubled, in the local
# part or the domain (gmai.com). Not a letter replaced (a.ferrari@ and f.ferrari@ are two
# people), nor a digit or a separator: the numbers and the dots, dashes and underscores that
# tell namesakes' addresses apart at one provider (anna.santoro@, annasantoro@, anna_santoro@:
# at 20k generated people, 30 of 42 false merges were such pairs).
# (The email's parts and marks are read once per record: _DERIVED.)
_LETTER_SLIP = '"email_plain_l" <> "email_plain_r" AND ' + _one_edit('"email_l"', '"email_r"', replaced=False)
# A letter swapped with a digit or a separator is a slip too (gret.arossi@ for greta.rossi@,
# celin3e69@ for celine369@): the letters, and the digits and separators, stay the same in the
# same order, and no namesake picks an address by moving its dot into a name. Not two digits
# swapped (celine369@ and celine396@ may be two Célines).
_MOVED_MARK = (
    '"email_letters_l" = "email_letters_r" AND "email_marks_l" = "email_marks_r"'
    ' AND length("email_l") = length("email_r") AND levenshtein("email_l", "email_r") = 2'
    ' AND damerau_levenshtein("email_l", "email_r") = 1'
)
# In the domain a letter replaced is a slip too (gmail.con, hotmaik.it): nobody owns the misspelt
# domain, so one local part at two such domains is one address typed wrong. Not two country codes
# (yahoo.it and yahoo.at are two real providers).
_DOMAIN_SLIP = (
    '"email_local_l" = "email_local_r" AND "email_domain_l" <> "email_domain_r"'
    ' AND damerau_levenshtein("email_domain_l", "email_domain_r") = 1'
    " AND NOT (regexp_matches(\"email_l\", '[.][a-z]{2}$') AND regexp_matches(\"email_r\", '[.][a-z]{2}$')"
    " AND right(\"email_l\", 3) <> right(\"email_r\", 3))"
)
# Both records under one name (either order): where the names differ the slip is often theirs
# (anna.marini@ and anna.martini@ are Anna Marini and Anna Martini: at 20k generated people,
# 4 of 9 false merges were such pairs).
_SAME_NAMES = ('(("first_name_l" = "first_name_r" AND "last_name_l" = "last_name_r")'
               ' OR ("first_name_l" = "last_name_r" AND "last_name_l" = "first_name_r"))')
# The names first, then the lengths: cheap tests that leave few of a run's millions of pairs for
# the edit distances (at 200k generated customers this level took two thirds of scoring). That holds
# where DuckDB tests it as a condition (a comparison level's CASE WHEN); computed as a value it works
# out every part for every pair, so elsewhere the pair's level is read instead (ONE_SLIP_LEVEL).
ONE_SLIP_EMAIL = (f'{_SAME_NAMES} AND abs(length("email_l") - length("email_r")) <= 1'
                  f" AND (({_LETTER_SLIP}) OR ({_MOVED_MARK}) OR ({_DOMAIN_SLIP}))")
ONE_SLIP_LEVEL = "one slip apart"  # the email comparison's level where ONE_SLIP_EMAIL holds


@dataclass(frozen=True)
class LinkageSettings:
    """Thresholds and training knobs of probabilistic matching.

    Pairs with match_probability >= match_threshold merge; pairs in
    [review_threshold, match_threshold) go to human review; lower ones are dropped.
    """

    match_threshold: float = 0.99
    review_threshold: float = 0.80

    def merges(self, pair: dict) -> bool:
        """A scored pair (a row of score_pairs) merges: at or above the match threshold, and
        corroborated by more than names and place (CORROBORATING_LEVELS)."""
        return pair["match_probability"] >= self.match_threshold and bool(pair["corroborated"])

    def reviews(self, pair: dict) -> bool:
        """A scored pair that does not merge waits for review: in the review band (or above it,
        uncorroborated), and not contradicted (CONTRADICTING_LEVELS)."""
        return (not self.merges(pair) and pair["match_probability"] >= self.review_threshold
                and not pair.get("contradicted"))

    # Below this many records EM has too few matches to learn from: use the fixed priors.
    min_records_to_train: int = 2_000
    # A blocking key shared by more records than this is not used for that key (see blocking.py).
    max_block_size: int = 100
    # Blocked pairs sampled for each EM pass (a common name can block millions at 1M records).
    em_max_pairs: float = 1e6
    seed: int = 42
    # Random pairs sampled to estimate u (FEBRL figures hold from 1e6 up; time grows with it).
    u_max_pairs: float = 1e6
    # A trained model (from train_model / load_model); None: train on the records scored.
    model: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.review_threshold <= self.match_threshold <= 1:
            raise ValueError(
                "LinkageSettings: need 0 < review_threshold <= match_threshold <= 1, got "
                f"review_threshold={self.review_threshold}, match_threshold={self.match_threshold}"
            )


def _level(creator, label: str, m: float, u: float):
    """A comparison level with a short evidence label and its fixed prior m/u."""
    return creator.configure(label_for_charts=label, m_probability=m, u_probability=u)


def _fixed(creator, label: str, m: float, u: float):
    """A level whose m/u training leaves alone (its weight is a modelling decision)."""
    return _level(creator, label, m, u).configure(fix_m_probability=True, fix_u_probability=True)


def _custom(sql: str) -> cll.CustomLevel:
    return cll.CustomLevel(sql, base_dialect_str="duckdb")


def _name_comparison(column: str, other: str, exact_u: float) -> cl.CustomComparison:
    # The swapped level catches first/last written in the other order (on either side).
    swapped = f'"{column}_l" = "{other}_r" OR "{column}_r" = "{other}_l"'
    return cl.CustomComparison(
        output_column_name=column,
        comparison_levels=[
            cll.NullLevel(column),
            _level(cll.ExactMatchLevel(column), "exact", 0.85, exact_u),
            _level(cll.JaroWinklerLevel(column, 0.92), "jw>0.92", 0.06, 0.003),
            _level(_custom(swapped), "swapped", 0.02, 0.0003),
            _level(cll.JaroWinklerLevel(column, 0.80), "jw>0.80", 0.03, 0.02),
            _level(cll.ElseLevel(), "differs", 0.04, 0.97),
        ],
    )


def _birth_date_comparison() -> cl.CustomComparison:
    y = 'year("birth_date_l") = year("birth_date_r")'
    m = 'month("birth_date_l") = month("birth_date_r")'
    d = 'day("birth_date_l") = day("birth_date_r")'
    transposed = f'{y} AND month("birth_date_l") = day("birth_date_r") AND day("birth_date_l") = month("birth_date_r")'
    one_part = f"({y} AND {m}) OR ({y} AND {d}) OR ({m} AND {d})"
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            _level(cll.ExactMatchLevel("birth_date"), "exact", 0.85, 0.0001),
            _level(_custom(transposed), "day-month transposed", 0.01, 0.00001),
            _level(_custom(one_part), "one part differs", 0.10, 0.004),
            _level(cll.ElseLevel(), "differs", 0.04, 0.9959),
        ],
    )


def _text_comparison(column: str, exact: tuple[float, float], close) -> cl.CustomComparison:
    """Exact / close (a fuzzy level given as (creator, label, m, u)) / differs."""
    creator, label, m, u = close
    return cl.CustomComparison(
        output_column_name=column,
        comparison_levels=[
            cll.NullLevel(column),
            _level(cll.ExactMatchLevel(column), "exact", *exact),
            _level(creator, label, m, u),
            _level(cll.ElseLevel(), "differs", 1 - exact[0] - m, 1 - exact[1] - u),
        ],
    )


def _address_comparison() -> cl.CustomComparison:
    # The street and the house number are compared apart. "via roma 12" and "via roma 18" are
    # close to Jaro-Winkler and most often neighbours; "belconnen way" and "280 belconnen way",
    # or "plantroad" and "65 plant road", are one street with a number left out or spaced.
    # (address_street and address_number are computed once per record: _DERIVED.)
    street = 'jaro_winkler_similarity("address_street_l", "address_street_r") > 0.92'
    same_number = ('("address_number_l" = "address_number_r" OR "address_number_l" IS NULL '
                   'OR "address_number_r" IS NULL)')
    return cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.NullLevel("address"),
            _level(cll.ExactMatchLevel("address"), "exact", 0.75, 0.0005),
            _level(_custom(f"{street} AND {same_number}"), "same street and number", 0.1, 0.0005),
            _level(_custom(street), "same street, other number", 0.05, 0.003),
            _level(cll.ElseLevel(), "differs", 0.1, 0.996),
        ],
    )


def _phone_comparison() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            cll.NullLevel("phone"),
            _level(cll.ExactMatchLevel("phone"), "exact", 0.70, 0.0001),
            _level(cll.ExactMatchLevel("phone_last7"), "last 7 digits", 0.05, 0.0002),
            _level(_custom(_one_edit('"phone_l"', '"phone_r"')), "one digit off", 0.08, 0.001),
            # A new phone is common: "differs" must not sink a match on its own.
            _level(cll.ElseLevel(), "differs", 0.17, 0.9987),
        ],
    )


def _email_comparison() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email"),
            _level(cll.ExactMatchLevel("email"), "exact", 0.70, 0.00005),
            # One address typed wrong (ONE_SLIP_EMAIL). Random pairs never land here and namesakes'
            # addresses differ by what a slip excludes (a digit, a separator, a letter replaced in
            # the local part), so its weight is fixed near the exact level's (about 12 bits);
            # below it, a slip scored as a mere look-alike local part (5 bits) sent one person's
            # records to review: 119 records at 20k generated people.
            _fixed(_custom(ONE_SLIP_EMAIL), ONE_SLIP_LEVEL, 0.04, 0.00001),
            # A local part is often the names spelt into an address, so beside equal names
            # it repeats their evidence; u from random pairs cannot see that (they rarely
            # share names). These levels keep a fixed, modest weight (about 5 bits) rather
            # than the ~11 their random-pair u would give.
            _fixed(cll.ExactMatchLevel("email_local"), "same local part, other domain", 0.08, 0.002),
            _fixed(
                cll.And(cll.ExactMatchLevel("email_domain"), cll.JaroWinklerLevel("email_local", 0.88)),
                "local part jw>0.88, same domain",
                0.07,
                0.002,
            ),
            _level(cll.ElseLevel(), "differs", 0.15, 0.99875),
        ],
    )


def comparisons() -> list[cl.CustomComparison]:
    """The comparisons of the model, in evidence order."""
    return [
        _name_comparison("first_name", "last_name", 0.005),
        _name_comparison("last_name", "first_name", 0.002),
        _birth_date_comparison(),
        _address_comparison(),
        _text_comparison("city", (0.85, 0.02), (cll.JaroWinklerLevel("city", 0.90), "jw>0.90", 0.05, 0.005)),
        _text_comparison(
            "postcode", (0.85, 0.01), (_custom(_one_edit('"postcode_l"', '"postcode_r"')), "one char off", 0.08, 0.05)
        ),
        _phone_comparison(),
        _email_comparison(),
    ]


def is_current(model: dict[str, Any]) -> bool:
    """The model (a kept one) was trained the way this version trains (TRAINING_VERSION), on its
    comparisons and levels, each as it is defined now: a model kept from an older version scores
    with its own levels (it carries their SQL), so it would never use a level added since, nor a
    level's new definition."""
    if model.get("attiva_training") != TRAINING_VERSION:
        return False
    kept = [(c["output_column_name"], [(level.get("label_for_charts"), level.get("sql_condition"))
                                       for level in c["comparison_levels"]])
            for c in model.get("comparisons", [])]
    now = [(c.output_column_name, [(level.label_for_charts, level.sql_condition) for level in c.comparison_levels])
           for c in (creator.get_comparison("duckdb") for creator in comparisons())]
    return kept == now


def _settings_creator(n_records: int) -> SettingsCreator:
    # Prior λ (training re-estimates it): one duplicate pair per ten records, counted as if
    # there were at least 10,000, so that on a handful of records two people sharing a
    # name alone (16 bits of evidence) are not taken for one.
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=RECORD_NUMBER,
        comparisons=comparisons(),
        retain_matching_columns=True,  # keeps gamma_* for the evidence
        retain_intermediate_calculation_columns=False,
        probability_two_random_records_match=0.2 / max(n_records, 10_000),
    )


def _load_records(con: duckdb.DuckDBPyConnection, records, table: str) -> int:
    """Copy the records' columns into a DuckDB table with the types the model expects, plus each record's
    number (RECORD_NUMBER) and the parts the comparisons read (_DERIVED)."""
    con.register("__records_input", records)
    cols = {row[0] for row in con.execute("DESCRIBE __records_input").fetchall()}
    missing = [c for c in RECORD_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"person records lack column(s) {', '.join(missing)}")
    typed = ", ".join(f"{_read_as_typed(c)} AS {c}" for c in RECORD_COLUMNS)
    derived = ", ".join(f"{sql} AS {name}" for name, sql in _DERIVED.items())
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT row_number() OVER (ORDER BY record_id) AS {RECORD_NUMBER}, "
                f"*, {derived} FROM (SELECT {typed} FROM __records_input)")
    con.unregister("__records_input")

    n, distinct = con.execute(f"SELECT count(*), count(DISTINCT record_id) FROM {table}").fetchall()[0]
    if n != distinct:
        raise ValueError(f"person records: record_id is not unique ({n - distinct} duplicate ids)")
    return n


# Parts of a record the comparisons read, computed once per record rather than once per candidate
# pair (a run scores millions of pairs).
_DERIVED = {
    # The street's letters and the house number of the folded address.
    "address_street": "nullif(regexp_replace(address, '[^a-z]', '', 'g'), '')",
    "address_number": "nullif(regexp_extract(address, '[0-9]+'), '')",
    "phone_last7": "nullif(regexp_extract(phone, '[0-9]{7}$'), '')",
    "email_local": "nullif(regexp_extract(email, '^[^@]+'), '')",
    "email_domain": "nullif(regexp_extract(email, '@([^@]+)$', 1), '')",
    "email_letters": "regexp_replace(email, '[^a-z]', '', 'g')",  # what a moved dot or digit keeps
    "email_marks": "regexp_replace(email, '[a-z]', '', 'g')",
    "email_plain": "regexp_replace(email, '[0-9._+-]', '', 'g')",  # what a letter slip changes
}


def _read_as_typed(column: str) -> str:
    """SQL reading one input column the way the comparisons expect it (spelling.py folds the typing)."""
    if column == "birth_date":
        return "try_cast(birth_date AS DATE)"
    if column in ("first_name", "last_name", "city"):
        return spelling.name_sql(column)
    if column == "address":
        return spelling.address_sql(column)
    if column == "postcode":  # "1011 AB" and "1011ab" are one Dutch postcode
        return "nullif(upper(replace(CAST(postcode AS VARCHAR), ' ', '')), '')"
    return f"CAST({column} AS VARCHAR)"


# EM needs blocks where true matches are common: on names alone (a common name, many
# people) it drifts to "same name" as the match class and learns a birth date that
# differs as normal. Each pass learns the comparisons its rule leaves out; a comparison
# several passes learn takes the median of what they learnt. The email and phone passes
# are the ones that learn the names at scale (see _learnt_people); an export without
# emails or phones (FEBRL) skips them.
EM_RULES = (
    ("first_name", "last_name", "birth_date"),
    ("birth_date", "postcode"),
    ("first_name", "last_name", "postcode"),
    ("email",),
    ("phone",),
)

# A pass whose match class is people finds their records agreeing on a name far more often
# than strangers' do (the priors say 57 times; FEBRL's passes learn 160 to 240 times). One
# that falls under this ratio learnt something else: from about 200k customers up, the pairs
# born on one day in one postcode are mostly strangers, and that pass learnt an exact first
# name as 1.1 times as likely among its "matches" (m 0.016, u 0.015), leaving names almost
# no weight. Such a pass is dropped.
MIN_NAME_AGREEMENT = 16
NAMES = ("first_name", "last_name")

# The models trained by earlier versions are retrained once (is_current): 2 = u from one
# unbroken sample, and the passes above with the guard.
TRAINING_VERSION = 2


def _train(linker: Linker, n_records: int, settings: LinkageSettings) -> None:
    """Estimate λ, u and m on the data itself; keep the priors when it is too small."""
    log = logging.getLogger(__name__)
    if n_records < settings.min_records_to_train:
        log.info("linkage: %d records < %d, using fixed priors", n_records, settings.min_records_to_train)
        return
    prior = linker._settings_obj._probability_two_random_records_match
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date"), block_on("email"), block_on("phone")],
        recall=0.6,
    )
    if not linker._settings_obj._probability_two_random_records_match > 0:
        linker._settings_obj._probability_two_random_records_match = prior  # no pair agreed on any rule
    # One sample, read whole. Splink's default reads it in chunks and stops once every level
    # was seen 100 times; the rarest levels' u then rest on a hundred pairs, and at 200k
    # customers three seeds gave review queues of 27,178 to 35,117 pairs (one sample, read
    # whole: 25,810 to 26,593), for no time saved (1M: 1.9 s against 2.1 s).
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.u_max_pairs, seed=settings.seed, num_chunks=1, min_count_per_level=None
    )
    for rule in EM_RULES:
        # A session that fails has already cut the linker's model down to the comparisons it
        # would train (and set its own λ): keep a copy to put back.
        before = deepcopy(linker._settings_obj.core_model_settings)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule),
                max_pairs=settings.em_max_pairs,
                # Splink counts the blocked pairs on a sample of records first: 5,000 of them is plenty.
                record_sample_proportion=min(1.0, 5_000 / n_records),
            )
        except EMTrainingException as error:
            # E.g. an export without birth dates: that pass has no pairs. The comparisons it
            # would have trained keep what other passes learnt, or their priors.
            linker._settings_obj.core_model_settings = before
            log.warning("linkage: EM pass on %s skipped: no pair of records agrees on it (%s)",
                        " + ".join(rule), type(error).__name__)
            continue
        doubt = _learnt_people(linker, before)
        if doubt:
            linker._settings_obj.core_model_settings = before
            log.warning("linkage: EM pass on %s dropped: the pairs it took for one person agree on %s",
                        " + ".join(rule), doubt)
    _floor_m(linker)


def _learnt_people(linker: Linker, before) -> str | None:
    """None when the EM pass just run took people for matches: for each name it learnt, the
    exact name is at least MIN_NAME_AGREEMENT times as likely among its matches as between
    strangers. Else says which name fell short, and by how much."""
    learnt_before = {c.output_column_name: c for c in before.comparisons}
    for comparison in linker._settings_obj.comparisons:
        if comparison.output_column_name not in NAMES:
            continue
        exact = next(level for level in comparison.comparison_levels if level.label_for_charts == "exact")
        earlier = next(level for level in learnt_before[comparison.output_column_name].comparison_levels
                       if level.label_for_charts == "exact")
        if len(exact._trained_m_probabilities) == len(earlier._trained_m_probabilities):
            continue  # this pass blocked on the name: it did not learn it
        m, u = exact._trained_m_probabilities[-1]["probability"], exact.u_probability
        if isinstance(m, (int, float)) and u and m < MIN_NAME_AGREEMENT * u:
            return f"an exact {comparison.output_column_name} {m / u:.1f} times as often as strangers (m {m:.3f}, u {u:.3f})"
    return None


# EM learns what the customer's data shows; where a level was (almost) never seen among
# matches (nobody changed their email in this export) its m would veto every future pair
# in it. A floor keeps a new email, phone or surname a strong but finite penalty (~-6.6 bits).
MIN_M_PROBABILITY = 0.01


def _floor_m(linker: Linker) -> None:
    for comparison in linker._settings_obj.comparisons:
        for level in comparison.comparison_levels:
            if not level.is_null_level and level.m_probability < MIN_M_PROBABILITY:
                level.m_probability = MIN_M_PROBABILITY


def _connect() -> duckdb.DuckDBPyConnection:
    """The in-memory database Splink works in, capped (ATTIVA_MATCHING_MEMORY_LIMIT, default 4GB) and spilling
    to a temporary folder past the cap: uncapped, DuckDB takes up to 80 % of the machine, and at 1M records
    training alone grew past 17 GB beside dbt's build."""
    spill = Path(tempfile.gettempdir()) / f"attiva-matching-{os.getpid()}"
    return duckdb.connect(config={"memory_limit": attiva_settings.matching_memory_limit(), "temp_directory": str(spill)})


def _linker(db_api: DuckDBAPI, table: str, n_records: int, settings: LinkageSettings) -> Linker:
    model = settings.model if settings.model is not None else _settings_creator(n_records)
    if isinstance(model, dict):  # record numbers, also in a model kept by a version that keyed records by record_id
        model = {key: value for key, value in model.items() if key != "attiva_training"}
        model["unique_id_column_name"] = RECORD_NUMBER
    return Linker(db_api.register(table, dataset_display_name=table), model, log_level=None)


def train_model(records, settings: LinkageSettings = LinkageSettings()) -> dict[str, Any]:
    """Fit the model's parameters on `records` (no labels needed); returns it as a JSON-able dict."""
    con = _connect()
    n = _load_records(con, records, "person_records")
    linker = _linker(DuckDBAPI(con), "person_records", n, replace(settings, model=None))
    _train(linker, n, settings)
    return _saved(linker)


def _saved(linker: Linker) -> dict[str, Any]:
    """The trained model as a JSON-able dict, marked with how it was trained (is_current)."""
    return {**linker.misc.save_model_to_json(), "attiva_training": TRAINING_VERSION}


def save_model(model: dict[str, Any], path: str | Path) -> None:
    """Write a trained model as JSON."""
    Path(path).write_text(json.dumps(model, indent=2), encoding="utf-8")


def load_model(path: str | Path) -> dict[str, Any]:
    """Read a model written by save_model."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _evidence_sql(linker: Linker) -> str:
    """SQL for the evidence column: 'first_name:exact, last_name:jw>0.92, ...'."""
    parts = []
    for comparison in linker._settings_obj.comparisons:
        name = comparison.output_column_name
        cases = " ".join(
            f"WHEN {level.comparison_vector_value} THEN '{name}:"
            + ("none" if level.is_null_level else level.label_for_charts.replace("'", "''"))
            + "'"
            for level in comparison.comparison_levels
        )
        parts.append(f'CASE "gamma_{name}" {cases} END')
    return f"concat_ws(', ', {', '.join(parts)})"


def _levels_sql(linker: Linker, levels: dict[str, tuple[str, ...]]) -> list[str]:
    """SQL conditions, one per comparison named in `levels`: the pair landed in one of those levels."""
    conditions = []
    for comparison in linker._settings_obj.comparisons:
        wanted = levels.get(comparison.output_column_name, ())
        values = [str(level.comparison_vector_value) for level in comparison.comparison_levels
                  if not level.is_null_level and level.label_for_charts in wanted]
        if values:
            conditions.append(f'"gamma_{comparison.output_column_name}" IN ({", ".join(values)})')
    return conditions


def _any_sql(linker: Linker, levels: dict[str, tuple[str, ...]]) -> str:
    """SQL: the pair landed in one of `levels` (false when the model has none of them)."""
    return " OR ".join(_levels_sql(linker, levels)) or "false"


def _corroborated_sql(linker: Linker) -> str:
    """SQL: true when the pair agrees on one of CORROBORATING_LEVELS, on the address in one place (or
    the street in one postcode) beside the first name (SAME_ADDRESS, SAME_STREET, SAME_FIRST_NAME;
    under another surname, not between two guest checkouts: OTHER_SURNAME), or has an email one slip
    apart."""
    # A first name missing on one side does not say "someone else" (FEBRL leaves one out now and then).
    first_name = " OR ".join([*_levels_sql(linker, SAME_FIRST_NAME), SWAPPED_NAMES])
    first_name = f'"gamma_first_name" = -1 OR (({first_name}) AND NOT ({OTHER_GENDER}))'
    same_city, same_postcode = _any_sql(linker, SAME_CITY), _any_sql(linker, SAME_POSTCODE)
    elsewhere = (f"(({_any_sql(linker, OTHER_CITY)}) AND NOT ({same_postcode}))"
                 f" OR (({_any_sql(linker, OTHER_POSTCODE)}) AND NOT ({same_city}))")
    one_postcode = (f"({_any_sql(linker, {'postcode': ('exact',)})})"
                    f" OR (({_any_sql(linker, {'postcode': ('one char off',)})}) AND ({same_city}))")
    address = (f"(({_any_sql(linker, SAME_ADDRESS)}) AND NOT ({elsewhere}))"
               f" OR (({_any_sql(linker, SAME_STREET)}) AND ({one_postcode}))")
    two_orders = f"\"source_l\" = '{GUEST}' AND \"source_r\" = '{GUEST}' AND ({_any_sql(linker, OTHER_SURNAME)})"
    household = f"({address}) AND ({first_name}) AND NOT ({two_orders})"
    # An email one slip apart, read from its level: ONE_SLIP_EMAIL computed here again, as a value, cost
    # 8 s of a 64 s run at 1M customers (see ONE_SLIP_EMAIL).
    one_slip = _levels_sql(linker, {"email": (ONE_SLIP_LEVEL,)})
    return " OR ".join([*one_slip, *_levels_sql(linker, CORROBORATING_LEVELS), f"({household})"])


def _contradicted_sql(linker: Linker) -> str:
    """SQL: true when the pair lands in one of CONTRADICTING_LEVELS, or in OTHER_HOME's (a name and the
    address both differ)."""
    names, address = (_any_sql(linker, levels) for levels in OTHER_HOME)
    # A birth date in common keeps it for review (FEBRL rewrites a surname and an address together).
    born = _any_sql(linker, {"birth_date": CORROBORATING_LEVELS["birth_date"]})
    other_home = f"({names}) AND ({address}) AND NOT coalesce({born}, false)"
    return " OR ".join([*_levels_sql(linker, CONTRADICTING_LEVELS), other_home])


def score_pairs(
    records,
    *,
    new_record_ids=None,
    settings: LinkageSettings = LinkageSettings(),
) -> pa.Table:
    """Score candidate pairs of person records; return those at or above the review threshold.

    `records`: a pyarrow.Table (or anything DuckDB can scan) with RECORD_COLUMNS.
    `new_record_ids`: when given, only pairs with at least one new record are scored
    (new against all), so an incremental run costs in proportion to the new records.
    Returns record_id_l < record_id_r, match_weight (log2 Bayes factor), match_probability,
    evidence (one 'comparison:level' per comparison), corroborated (agrees on more than names
    and place: see LinkageSettings.merges) and contradicted (LinkageSettings.reviews), ordered by
    the two ids; the schema
    metadata b"candidate_pairs" says how many candidate pairs were compared.
    """
    return train_and_score(records, new_record_ids=new_record_ids, settings=settings)[1]


def train_and_score(
    records,
    *,
    new_record_ids=None,
    settings: LinkageSettings = LinkageSettings(),
) -> tuple[dict[str, Any], pa.Table]:
    """score_pairs, and the model it scored with: `settings.model`, or the one it trained on
    `records` when that is None (as train_model would; the records are read once for both)."""
    con = _connect()
    n = _load_records(con, records, "person_records")
    db_api = DuckDBAPI(con)
    linker = _linker(db_api, "person_records", n, settings)
    if settings.model is None:
        _train(linker, n, settings)
    model = settings.model if settings.model is not None else _saved(linker)

    new_ids = None
    if new_record_ids is not None:
        con.register("__new_record_ids", pa.table({"record_id": pa.array([str(i) for i in new_record_ids], pa.string())}))
        con.execute(f"CREATE TABLE __new_ids AS SELECT {RECORD_NUMBER} FROM person_records "
                    "WHERE record_id IN (SELECT record_id FROM __new_record_ids)")
        new_ids = "__new_ids"
    candidates = candidate_pairs(con, "person_records", "__candidate_pairs", settings.max_block_size, new_ids)
    linker.table_management.register_blocked_pairs_for_predict(db_api.register("__candidate_pairs"))
    # Only the pairs that could merge or wait for review are kept: a run scores millions.
    predictions = linker.inference.predict(threshold_match_probability=settings.review_threshold,
                                           warning_mode="never")
    source = predictions.physical_name
    pairs = (
        con.sql(
            f"""
        SELECT l.record_id AS record_id_l, r.record_id AS record_id_r,
               CAST(match_weight AS DOUBLE) AS match_weight,
               CAST(match_probability AS DOUBLE) AS match_probability,
               {_evidence_sql(linker)} AS evidence,
               coalesce({_corroborated_sql(linker)}, false) AS corroborated,
               coalesce({_contradicted_sql(linker)}, false) AS contradicted
        FROM {source}
        -- each side's id, and its source, which _corroborated_sql reads (the comparisons do not keep it);
        -- record numbers follow the ids, so the lower id is on the left
        JOIN (SELECT {RECORD_NUMBER}, record_id, source AS source_l FROM person_records) AS l
          ON l.{RECORD_NUMBER} = {RECORD_NUMBER}_l
        JOIN (SELECT {RECORD_NUMBER}, record_id, source AS source_r FROM person_records) AS r
          ON r.{RECORD_NUMBER} = {RECORD_NUMBER}_r
        WHERE match_probability >= {float(settings.review_threshold)!r}
        ORDER BY record_id_l, record_id_r
        """
        )
        .to_arrow_table()
        .cast(PAIR_SCHEMA)
    )
    # How many candidate pairs were compared (before the review threshold), for cost figures.
    return model, pairs.replace_schema_metadata({"candidate_pairs": str(candidates)})
