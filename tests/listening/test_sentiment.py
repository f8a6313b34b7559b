"""Language and sentiment of brand mentions as a listening user reads them (activations/listening)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from activations.listening.sentiment import language, sentiment

DATA = Path(__file__).parents[2] / "benchmarks" / "data"
# Accuracy measured by benchmarks/listening_sentiment.py less five points, so a change to the lexicons,
# the rules or a package that costs more fails here. Development set (the lexicons were fitted to it):
# Italian 83.6%, English 82.6%; held-out set: Italian 74.1%, English 64.7%. Language: 100% and 99.6%.
FLOORS = {
    ("mentions_sentiment.csv", "it"): 0.78,
    ("mentions_sentiment.csv", "en"): 0.77,
    ("mentions_sentiment_holdout.csv", "it"): 0.69,
    ("mentions_sentiment_holdout.csv", "en"): 0.59,
}
LANGUAGE_FLOOR = 0.95


def label(text: str, code: str) -> str:
    return sentiment(text, code)[1]


@pytest.mark.parametrize(
    "text",
    [
        "Non mi è piaciuto per niente",
        "Il divano non è comodo",
        "Nessun complimento per il servizio clienti",
        "La giacca non è affatto bella",
    ],
)
def test_a_negated_positive_italian_mention_is_not_positive(text):
    assert label(text, "it") != "positive"


def test_italian_negation_is_concordant_so_non_and_mai_negate_once():
    assert label("Sono cliente da anni e non mi hanno mai deluso", "it") == "positive"
    assert label("Non male, niente male davvero", "it") == "positive"


def test_italian_intensifiers_and_superlatives_strengthen_the_word():
    plain = sentiment("Il divano è comodo", "it")[0]
    assert sentiment("Il divano è davvero comodo", "it")[0] > plain
    assert sentiment("Il divano è comodissimo", "it")[0] > plain
    assert sentiment("Il divano è abbastanza comodo", "it")[0] < plain


def test_italian_emoji_and_ma_count():
    assert label("Consegna oggi 😢", "it") == "negative"
    assert label("Arrivato il plaid 😍", "it") == "positive"
    # "ma" moves the weight to what follows it.
    assert label("Bello ma scomodissimo", "it") == "negative"


def test_a_clearly_negative_english_review_is_negative():
    assert label("Awful quality, the sofa arrived broken and support never replied. Avoid.", "en") == "negative"
    assert label("I didn't like the fabric at all 😡", "en") == "negative"
    assert label("Love my new sofa, so comfy!", "en") == "positive"


def test_a_factual_mention_is_neutral_in_both_languages():
    assert label("Casa Lume apre un negozio a Verona il 12 marzo", "it") == "neutral"
    assert label("Casa Lume opens a store in York on 12 March", "en") == "neutral"


def test_scores_stay_in_range_and_unknown_languages_are_refused():
    for text in ("Pessimo!!!! 😡😡😡 mai più, terribile, orribile, una vergogna", "BEST. SHOP. EVER!!! 😍😍"):
        for code in ("it", "en"):
            assert -1.0 <= sentiment(text, code)[0] <= 1.0
    with pytest.raises(ValueError, match="only 'it' and 'en'"):
        sentiment("¡Me encanta el sofá!", "es")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ordine arrivato in ritardo 😡", "it"),
        ("Spedizione veloce, top!", "it"),
        ("Non mi è piaciuto per niente", "it"),
        ("bella giacca #ootd", "it"),
        ("Love the new sofa!", "en"),
        ("Great value, would buy again", "en"),
        ("The lamp broke after two weeks", "en"),
        ("¡Me encanta el sofá nuevo, llegó muy rápido!", None),
        ("Das Sofa ist wirklich sehr bequem und schön", None),
        ("😍 #ootd https://example.com/p/1", None),
        ("", None),
    ],
)
def test_language_of_short_mentions(text, expected):
    assert language(text) == expected


def _labelled(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("name", "minimum"), [("mentions_sentiment.csv", 300), ("mentions_sentiment_holdout.csv", 100)])
def test_each_labelled_set_is_big_enough_in_each_language(name, minimum):
    rows = _labelled(name)
    for code in ("it", "en"):
        mine = [row for row in rows if row["language"] == code]
        assert len(mine) >= minimum
        assert {row["label"] for row in mine} == {"positive", "negative", "neutral"}


def test_the_held_out_set_shares_no_mention_with_the_development_set():
    development = {row["text"] for row in _labelled("mentions_sentiment.csv")}
    assert not development & {row["text"] for row in _labelled("mentions_sentiment_holdout.csv")}


@pytest.mark.parametrize(("name", "code"), sorted(FLOORS))
def test_sentiment_accuracy_on_the_labelled_sets_holds_its_floor(name, code):
    rows = [row for row in _labelled(name) if row["language"] == code]
    right = sum(label(row["text"], code) == row["label"] for row in rows)
    assert right / len(rows) >= FLOORS[name, code], f"{name} {code}: {right}/{len(rows)}"


@pytest.mark.parametrize("name", ["mentions_sentiment.csv", "mentions_sentiment_holdout.csv"])
def test_language_detection_on_the_labelled_sets_holds_its_floor(name):
    rows = _labelled(name)
    right = sum(language(row["text"]) == row["language"] for row in rows)
    assert right / len(rows) >= LANGUAGE_FLOOR, f"{name}: {right}/{len(rows)}"


@pytest.mark.parametrize(
    ("name", "floor"), [("mentions_language_short.csv", 0.86), ("mentions_language_short_holdout.csv", 0.89)]
)
def test_language_of_very_short_posts_holds_its_floor(name, floor):
    # Measured on posts of 1-4 words, where "other" must come back as None: 110/120 (91.7%) on the set
    # the threshold was chosen on, 66/70 (94.3%) held out; less five points.
    rows = _labelled(name)
    right = sum((language(row["text"]) or "other") == row["language"] for row in rows)
    assert right / len(rows) >= floor, f"{name}: {right}/{len(rows)}"
