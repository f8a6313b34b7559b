"""The API's one-value phone normalizer gives the shared polars rules' answer for every spelling, so a
visitor typed any way is found exactly when dbt would have stored them."""

from __future__ import annotations

import random

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from activations.destinations.identifiers import normalize_phone
from activations.serve.normalize import phone_e164


def polars_rules(values: list[str], cc: str = "39") -> list[str | None]:
    return pl.Series("v", values, dtype=pl.String).to_frame().select(
        normalize_phone(pl.col("v"), default_country_code=cc)).to_series().to_list()


def spellings(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    parts = ["+", "00", "0", "39", "44", "1", "(0)", " ", "-", ".", "/", "(", ")", "\t", "x", "ext", "333",
             "1234567", "123456", "000000", "1111111", "02", "06", "3", "9"]
    return [" " * rng.randint(0, 1) + "".join(rng.choice(parts) for _ in range(rng.randint(1, 8))) for _ in range(n)]


def test_the_api_normalizes_phones_as_the_shared_rules_do():
    known = ["+39 333 123 4567", "333-1234567", "0039 3331234567", "+44 (0)20 7946 0958", "02 1234567",
             "0000000000", "123456", "+39 123456789", "  +393331234567  ", "", " ", "n/a", "+1 (415) 555-2671",
             "3331234567\u00a0", "\u00a0+39 333 1234567", "+39\u2007333\u20071234567", "+39 333 1111111"]
    values = known + spellings(5_000)  # (other characters go through the polars rules themselves)
    for cc in ("39", "44"):
        expected = polars_rules(values, cc)
        mismatched = [(v, phone_e164(v, cc), e) for v, e in zip(values, expected, strict=True) if phone_e164(v, cc) != e]
        assert not mismatched, mismatched[:10]
    assert phone_e164("333 123 4567") == "+393331234567"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="+0123456789 ()-./\t\n39x", max_size=20), min_size=1, max_size=50))
def test_any_string_of_phone_characters(values):
    assert [phone_e164(v) for v in values] == polars_rules(values)
