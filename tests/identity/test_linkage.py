"""Probabilistic matching of person records, on a FEBRL4 subset (labelled data no one here
wrote) and on handcrafted pairs of the shapes real exports carry."""

from __future__ import annotations

import logging
import random
import string
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from activations.identity.linkage import (
    PERSON_SCHEMA,
    LinkageSettings,
    load_model,
    save_model,
    score_pairs,
    train_model,
)
from tests.identity import febrl

logging.getLogger("splink").setLevel(logging.ERROR)

SUBSET_LINKS = 300  # FEBRL4 pairs in the subset: 600 records, a couple of seconds to score


@pytest.fixture(scope="module")
def febrl_subset() -> tuple[pa.Table, set[tuple[str, str]]]:
    """The first 300 FEBRL4 true links: 600 records (300 from file A, their 300 in file B)."""
    records, _, truth = febrl.febrl4()
    links = set(sorted(truth)[:SUBSET_LINKS])
    ids = sorted({record_id for pair in links for record_id in pair})
    return records.filter(pc.is_in(records["record_id"], pa.array(ids))), links


@pytest.fixture(scope="module")
def trained_model(febrl_subset) -> dict:
    """A model trained on the subset itself (EM + u sampling, no labels)."""
    records, _ = febrl_subset
    return train_model(records, LinkageSettings(min_records_to_train=100, u_max_pairs=1e5))


def _merged(pairs: pa.Table, settings: LinkageSettings) -> set[tuple[str, str]]:
    return {(row["record_id_l"], row["record_id_r"]) for row in pairs.to_pylist() if settings.merges(row)}


def _precision_recall(predicted: set, truth: set) -> tuple[float, float]:
    hits = len(predicted & truth)
    return hits / len(predicted), hits / len(truth)


def _person(record_id: str, **fields) -> dict:
    base = dict.fromkeys(("first_name", "last_name", "birth_date", "address", "city", "postcode", "phone", "email"))
    return {"record_id": record_id, "source": "crm", **base, **fields}


def _records(*people: dict) -> pa.Table:
    return pa.Table.from_pylist(list(people), schema=PERSON_SCHEMA)


def test_febrl_subset_with_fixed_priors_finds_the_links_without_false_merges(febrl_subset):
    records, truth = febrl_subset
    settings = LinkageSettings()  # 600 records < min_records_to_train: the fixed priors
    pairs = score_pairs(records, settings=settings)

    precision, recall = _precision_recall(_merged(pairs, settings), truth)
    assert precision >= 0.99
    assert recall >= 0.95
    assert pairs.schema.names == ["record_id_l", "record_id_r", "match_weight", "match_probability", "evidence",
                                  "corroborated", "contradicted"]
    assert all(
        left < right
        for left, right in zip(pairs["record_id_l"].to_pylist(), pairs["record_id_r"].to_pylist(), strict=True)
    )
    assert min(pairs["match_probability"].to_pylist()) >= settings.review_threshold


def test_febrl_subset_with_a_model_trained_on_it_and_saved_as_json(febrl_subset, trained_model, tmp_path):
    records, truth = febrl_subset
    save_model(trained_model, tmp_path / "model.json")
    settings = LinkageSettings(model=load_model(tmp_path / "model.json"))
    pairs = score_pairs(records, settings=settings)

    precision, recall = _precision_recall(_merged(pairs, settings), truth)
    assert precision >= 0.99
    assert recall >= 0.95
    # The model really was trained: its m/u differ from the fixed priors it started from.
    assert score_pairs(records, settings=LinkageSettings())["match_weight"] != pairs["match_weight"]


def test_swapped_first_and_last_name_link():
    records = _records(
        _person("crm:1", first_name="maria", last_name="kowalski", birth_date=date(1984, 6, 2), postcode="10115"),
        _person("shop:9", first_name="kowalski", last_name="maria", birth_date=date(1984, 6, 2), postcode="10115"),
        _person("crm:2", first_name="peter", last_name="lindqvist", birth_date=date(1962, 1, 30), postcode="80331"),
    )
    settings = LinkageSettings()
    rows = score_pairs(records, settings=settings).to_pylist()

    assert [(r["record_id_l"], r["record_id_r"]) for r in rows] == [("crm:1", "shop:9")]
    assert settings.merges(rows[0])
    assert "first_name:swapped" in rows[0]["evidence"] and "last_name:swapped" in rows[0]["evidence"]


def test_typo_in_the_email_still_links():
    records = _records(
        _person("crm:1", first_name="jon", last_name="okafor", email="jon.okafor@example.com", city="leeds"),
        _person("shop:4", first_name="jon", last_name="okafor", email="jon.okafro@example.com", city="leeds"),
        _person("shop:5", first_name="jon", last_name="okafor", email="okafor.j@other.org", city="york"),
    )
    settings = LinkageSettings()
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    typo = rows[("crm:1", "shop:4")]
    assert settings.merges(typo)
    assert "email:one slip apart" in typo["evidence"]
    # Same name, but another email and city: not merged.
    assert rows.get(("crm:1", "shop:5"), {"match_probability": 0})["match_probability"] < settings.match_threshold


def test_an_address_typed_wrong_merges_on_the_names_alone():
    # Seen at 20k generated people, each left for a reviewer before: the rep's contact carries the
    # address with one slip (a letter dropped from the domain, one replaced in it, two swapped) and
    # nothing else in common, not even the city. Two real providers in two countries are two
    # addresses, a look-alike local part at another provider stays weak, and a slip that is the
    # names' own difference is another person.
    records = _records(
        _person("crm:1", first_name="michael", last_name="pichler", email="michael.pichler@gmal.com",
                phone="+436506859416"),
        _person("shop:1", first_name="michael", last_name="pichler", email="michael.pichler@gmail.com", city="wien"),
        _person("crm:2", first_name="marie", last_name="martin", email="marie745@gmail.con"),
        _person("shop:2", first_name="marie", last_name="martin", email="marie745@gmail.com", city="lyon"),
        _person("crm:3", first_name="cristina", last_name="santoro", email="cristina.santroo@outlook.it"),
        _person("shop:3", first_name="cristina", last_name="santoro", email="cristina.santoro@outlook.it"),
        _person("crm:4", first_name="luca", last_name="ferri", email="luca.ferri@yahoo.it"),
        _person("shop:4", first_name="luca", last_name="ferri", email="luca.ferri@yahoo.at"),
        _person("crm:5", first_name="luca", last_name="ferri", email="luca.ferri@libero.it"),
        # The slip is the surnames' own: Anna Marini and Anna Martini.
        _person("crm:6", first_name="anna", last_name="marini", email="anna.marini@libero.it", city="genova"),
        _person("shop:6", first_name="anna", last_name="martini", email="anna.martini@libero.it"),
        # A dot or a digit swapped with a letter is a slip; two digits swapped may be two Célines.
        _person("crm:7", first_name="greta", last_name="rossi", email="gret.arossi@gmail.com"),
        _person("shop:7", first_name="greta", last_name="rossi", email="greta.rossi@gmail.com", city="roma"),
        _person("crm:8", first_name="celine", last_name="bernard", email="celin3e69@sfr.fr"),
        _person("shop:8", first_name="celine", last_name="bernard", email="celine369@sfr.fr", city="paris"),
        _person("crm:9", first_name="celine", last_name="bernard", email="celine396@sfr.fr"),
    )
    settings = LinkageSettings(review_threshold=1e-9)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    for pair in (("crm:1", "shop:1"), ("crm:2", "shop:2"), ("crm:3", "shop:3"), ("crm:7", "shop:7"), ("crm:8", "shop:8")):
        assert "email:one slip apart" in rows[pair]["evidence"] and settings.merges(rows[pair]), rows[pair]
    for pair in (("crm:4", "shop:4"), ("crm:4", "crm:5"), ("crm:6", "shop:6"), ("crm:9", "shop:8")):
        assert "email:one slip apart" not in rows[pair]["evidence"] and not settings.merges(rows[pair]), rows[pair]


def test_a_vetoed_identifier_never_supports_a_match():
    # Two different people behind one shared mailbox and switchboard number; the caller's
    # deterministic guards set both aside (None).
    def people(email, phone):
        return _records(
            _person("crm:1", first_name="ann", last_name="berg", email=email, phone=phone, city="oslo"),
            _person("crm:2", first_name="ole", last_name="dahl", email=email, phone=phone, city="oslo"),
        )

    settings = LinkageSettings(review_threshold=1e-9)
    shared = score_pairs(people("info@shop.no", "4722000000"), settings=settings).to_pylist()
    vetoed = score_pairs(people(None, None), settings=settings).to_pylist()

    assert shared and shared[0]["match_probability"] >= LinkageSettings().review_threshold  # what the veto prevents
    # Vetoed, the pair is not even a candidate: nothing else they share is a blocking key.
    assert vetoed == []

    # When the pair is a candidate for other reasons, the None adds nothing (weight 0).
    def same_name(email):
        return _records(
            _person("crm:1", first_name="ann", last_name="berg", email=email),
            _person("crm:2", first_name="ann", last_name="berg", email=None),
        )

    with_none = score_pairs(same_name(None), settings=settings).to_pylist()[0]
    one_sided = score_pairs(same_name("ann@berg.no"), settings=settings).to_pylist()[0]
    assert "email:none" in with_none["evidence"] and "email:none" in one_sided["evidence"]
    assert with_none["match_weight"] == pytest.approx(one_sided["match_weight"])
    assert with_none["match_probability"] < settings.match_threshold


def test_incremental_scoring_is_full_scoring_restricted_to_pairs_with_a_new_record(febrl_subset, trained_model):
    records, truth = febrl_subset
    settings = LinkageSettings(model=trained_model, review_threshold=0.01)
    # New: 20 records from file B whose originals are old, and both sides of 5 other links.
    new_ids = {b for _, b in sorted(truth)[:20]} | {r for pair in sorted(truth)[-5:] for r in pair}

    full = score_pairs(records, settings=settings).to_pylist()
    incremental = score_pairs(records, new_record_ids=sorted(new_ids), settings=settings).to_pylist()

    expected = [r for r in full if r["record_id_l"] in new_ids or r["record_id_r"] in new_ids]
    assert len(expected) >= 25
    assert [(r["record_id_l"], r["record_id_r"], r["evidence"]) for r in incremental] == [
        (r["record_id_l"], r["record_id_r"], r["evidence"]) for r in expected
    ]
    assert [r["match_weight"] for r in incremental] == pytest.approx([r["match_weight"] for r in expected], abs=1e-9)


def _parameters(model: dict) -> list[float]:
    levels = [level for comparison in model["comparisons"] for level in comparison["comparison_levels"]]
    return [model["probability_two_random_records_match"]] + [
        level.get(key, 0.0) for level in levels for key in ("m_probability", "u_probability")
    ]


def test_training_and_scoring_are_deterministic(febrl_subset, trained_model):
    records, _ = febrl_subset
    again = train_model(records, LinkageSettings(min_records_to_train=100, u_max_pairs=1e5))
    # Same seeds, same parameters; DuckDB's parallel sums may differ in the last bit.
    assert _parameters(again) == pytest.approx(_parameters(trained_model), rel=1e-12)

    settings = LinkageSettings(model=trained_model)
    assert score_pairs(records, settings=settings).equals(score_pairs(records, settings=settings))


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="lack column.*email"):
        score_pairs(pa.table({"record_id": ["a"], "source": ["crm"]}))
    duplicate = _person("crm:1", first_name="a")
    with pytest.raises(ValueError, match="record_id is not unique"):
        score_pairs(_records(duplicate, duplicate))
    with pytest.raises(ValueError, match="review_threshold <= match_threshold"):
        LinkageSettings(match_threshold=0.5, review_threshold=0.9)


def test_no_level_of_a_trained_model_is_a_veto(febrl_subset):
    # An export where all but one duplicate kept its email: among matches EM sees "email
    # differs" about once in 140 pairs. Unfloored, that m (0.007) all but forbids every
    # future pair with a new email; floored, a new email costs at most about 6.6 bits.
    records, links = febrl_subset
    rows = records.to_pylist()
    changed = sorted(links)[0][0]  # one record of one true pair gets a new address
    for row in rows:
        row["email"] = (
            "new@example.org" if row["record_id"] == changed else row["record_id"].split("-")[1] + "@example.com"
        )
    model = train_model(
        pa.Table.from_pylist(rows, schema=records.schema), LinkageSettings(min_records_to_train=100, u_max_pairs=1e5)
    )

    email = next(c for c in model["comparisons"] if c["output_column_name"] == "email")
    differs = next(level for level in email["comparison_levels"] if level["label_for_charts"] == "differs")
    assert differs["m_probability"] >= 0.01
    levels = [level for comparison in model["comparisons"] for level in comparison["comparison_levels"]]
    assert min(level["m_probability"] for level in levels if not level.get("is_null_level")) >= 0.01


def test_an_export_without_birth_dates_trains_and_still_links(febrl_subset):
    # Marketing data often has no birth date: the EM passes that block on it find no pairs.
    records, truth = febrl_subset
    no_dob = records.set_column(
        records.schema.get_field_index("birth_date"), "birth_date", pa.nulls(records.num_rows, pa.date32())
    )
    model = train_model(no_dob, LinkageSettings(min_records_to_train=100, u_max_pairs=1e5))
    assert 0 < model["probability_two_random_records_match"] < 0.01

    settings = LinkageSettings(model=model)
    precision, recall = _precision_recall(
        _merged(score_pairs(no_dob, settings=settings), settings), truth
    )
    assert precision >= 0.99
    # Without birth dates the address is what corroborates most pairs, and only beside the first
    # name (a household shares the rest): 0.79 measured, 0.82 before that rule.
    assert recall >= 0.75


def test_namesakes_in_one_city_never_merge_however_high_their_score():
    # Same names, same city, name-derived emails at two providers, numbered or punctuated: nothing
    # but the names and the place. At two providers, one person as often as not: a reviewer
    # decides. Two addresses alike at one provider were each picked by their own owner: no review.
    records = _records(
        _person("crm:1", first_name="giulia", last_name="fontana", email="giulia.fontana@gmail.com", city="roma"),
        _person("shop:2", first_name="giulia", last_name="fontana", email="giulia.fontana@libero.it", city="roma"),
        _person("shop:3", first_name="giulia", last_name="fontana", email="giulia.fontana4@gmail.com", city="roma"),
        _person("shop:4", first_name="giulia", last_name="fontana", email="giulia.fotnana@gmail.com", city="roma"),
        _person("shop:5", first_name="giulia", last_name="fontana", email="giulia.fontana@gmai.com", city="roma"),
        _person("shop:6", first_name="giulia", last_name="fontana", email="giulia_fontana@gmail.com", city="roma"),
        _person("shop:7", first_name="giulia", last_name="fontana", email="giuliafontana@gmail.com", city="roma"),
    )
    settings = LinkageSettings(review_threshold=1e-9)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    for other in ("shop:2", "shop:3", "shop:6", "shop:7"):
        pair = rows[("crm:1", other)]
        assert not pair["corroborated"] and not settings.merges(pair), pair
    assert settings.reviews(rows[("crm:1", "shop:2")]), rows[("crm:1", "shop:2")]
    for own in ("shop:3", "shop:6", "shop:7"):
        assert rows[("crm:1", own)]["contradicted"] and not settings.reviews(rows[("crm:1", own)]), own
    # One slip in the address (letters swapped, a letter dropped from the domain) is the same person.
    for typo in ("shop:4", "shop:5"):
        assert rows[("crm:1", typo)]["corroborated"], rows[("crm:1", typo)]
    # A birth date or a phone in common corroborates the names.
    dated = _records(
        _person("crm:1", first_name="giulia", last_name="fontana", birth_date=date(1990, 3, 4), city="roma"),
        _person("shop:2", first_name="giulia", last_name="fontana", birth_date=date(1990, 3, 4), city="roma"),
    )
    assert score_pairs(dated, settings=settings).to_pylist()[0]["corroborated"]


def test_namesakes_born_years_apart_never_wait_for_review():
    # Same names, city and postcode, birth dates that differ in every part: two people, however
    # high the names push the score; nothing for a reviewer. A typo in one part, or day and month
    # swapped, still waits for review.
    def giulia(record_id: str, born: date) -> dict:
        return _person(record_id, first_name="giulia", last_name="fontana", birth_date=born, city="roma",
                       postcode="00185")

    records = _records(giulia("crm:1", date(1990, 3, 4)), giulia("shop:2", date(1967, 11, 23)),
                       giulia("shop:3", date(1990, 3, 14)), giulia("shop:4", date(1990, 4, 3)))
    settings = LinkageSettings(review_threshold=0.5)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    apart = rows[("crm:1", "shop:2")]
    assert apart["match_probability"] >= settings.review_threshold and apart["contradicted"], apart
    assert not settings.reviews(apart) and not settings.merges(apart)
    for typo in ("shop:3", "shop:4"):
        pair = rows[("crm:1", typo)]
        assert not pair["contradicted"] and (settings.reviews(pair) or settings.merges(pair)), pair


def test_an_address_says_household_and_corroborates_only_beside_the_first_name():
    # One person as typed by a rep, by themselves and at a guest checkout (capitals, "V.le", "n.",
    # names swapped): one street line once folded, and it corroborates. Their sister at the same
    # address, and a Marco Rossi two doors down, are not them.
    records = _records(
        _person("crm:1", first_name="ROSSI", last_name="Giulia", address="V.le Giuseppe Verdi, 12", city="Roma"),
        _person("shop:2", first_name="Giulia", last_name="Rossi", address="viale  giuseppe verdi n. 12 ",
                city="roma", postcode="00185"),
        _person("guest:3", first_name="Anna", last_name="Rossi", address="Viale Giuseppe Verdi 12", city="Roma",
                postcode="00185"),
        _person("guest:4", first_name="Marco", last_name="Rossi", address="Viale Giuseppe Verdi 18", city="Roma",
                postcode="00185"),
    )
    settings = LinkageSettings(review_threshold=1e-9)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    same = rows[("crm:1", "shop:2")]
    assert "address:exact" in same["evidence"] and same["corroborated"], same
    sister = rows[("guest:3", "shop:2")]
    assert "address:exact" in sister["evidence"] and not sister["corroborated"] and not settings.merges(sister)
    neighbour = rows[("guest:4", "shop:2")]
    assert "address:same street, other number" in neighbour["evidence"] and not neighbour["corroborated"], neighbour


def test_the_matching_database_is_capped_and_spills_to_a_temporary_folder(monkeypatch):
    """Uncapped, DuckDB takes up to 80 % of the machine: at 1M records training grew past 17 GB beside dbt."""
    from activations.identity import linkage

    monkeypatch.setenv("ATTIVA_MATCHING_MEMORY_LIMIT", "300MB")
    con = linkage._connect()
    try:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "286.1 MiB"
        assert "attiva-matching-" in con.execute("select current_setting('temp_directory')").fetchone()[0]
    finally:
        con.close()


def test_two_guest_orders_to_one_address_under_two_surnames_are_not_one_person():
    # Sarah Huber's and Sarah Leitner's guest orders both ship to their hotel's office: the same
    # first name at one address, another surname. Between two guest checkouts that is colleagues,
    # not a maiden name; a shop account (the holder's own address) beside a guest order still is.
    def sarah(record_id: str, source: str, last_name: str) -> dict:
        return {**_person(record_id, first_name="sarah", last_name=last_name, address="leitnerstrasse 66",
                          city="wien", postcode="1020"), "source": source}

    records = _records(sarah("guest:1", "guest", "huber"), sarah("guest:2", "guest", "leitner"),
                       sarah("shop:3", "shop", "leitner"))
    settings = LinkageSettings(review_threshold=1e-9)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    assert "address:exact" in rows[("guest:1", "guest:2")]["evidence"]
    assert not rows[("guest:1", "guest:2")]["corroborated"] and not settings.merges(rows[("guest:1", "guest:2")])
    assert rows[("guest:1", "shop:3")]["corroborated"], rows[("guest:1", "shop:3")]


def test_another_name_in_another_home_never_waits_for_review():
    # Maria Rossi and Maria Bianchi of one postcode, each at her own address with her own email: the
    # town counted twice (city and postcode) lifted such pairs into the review band by the thousand.
    # Another surname at the same address (a married name) still waits for review.
    def maria(record_id: str, last_name: str, address: str, email: str) -> dict:
        return _person(record_id, first_name="maria", last_name=last_name, address=address, city="torino",
                       postcode="10121", email=email)

    records = _records(maria("crm:1", "rossi", "via roma 12", "maria.rossi@libero.it"),
                       maria("shop:2", "bianchi", "corso francia 80", "mbianchi@gmail.com"),
                       maria("shop:3", "bianchi", "via roma 12", "mbianchi@gmail.com"))
    settings = LinkageSettings(review_threshold=1e-9)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    apart = rows[("crm:1", "shop:2")]
    assert apart["contradicted"] and not settings.reviews(apart), apart
    assert not rows[("crm:1", "shop:3")]["contradicted"], rows[("crm:1", "shop:3")]


def test_an_address_corroborates_only_in_one_place():
    # Alexander Schwarz at Hauptstrasse 5 in Hamburg and another in Düsseldorf: one street line in
    # two cities. Manuel González at Calle Mayor 3 and 14 of one city, two postcodes: neighbours'
    # streets, not his. The same line with the city typed another way, the same postcode, is his;
    # so is the same street at another number in one postcode (a house number rewritten).
    def person(record_id: str, first: str, last: str, address: str, city: str, postcode: str) -> dict:
        return _person(record_id, first_name=first, last_name=last, address=address, city=city, postcode=postcode)

    records = _records(
        person("crm:1", "alexander", "schwarz", "hauptstrasse 5", "hamburg", "20095"),
        person("shop:1", "alexander", "schwarz", "hauptstrasse 5", "dusseldorf", "40213"),
        person("crm:2", "manuel", "gonzalez", "calle mayor 3", "madrid", "28013"),
        person("shop:2", "manuel", "gonzalez", "calle mayor 14", "madrid", "28005"),
        person("crm:3", "giulia", "conti", "via roma 12", "reggio emilia", "42121"),
        person("shop:3", "giulia", "conti", "via roma 12", "reggio nell emilia", "42121"),
        person("crm:4", "paolo", "neri", "via roma 12", "bra", "12042"),
        person("shop:4", "paolo", "neri", "via roma 21", "bra", "12042"),
    )
    settings = LinkageSettings(review_threshold=1e-9)
    rows = {(r["record_id_l"], r["record_id_r"]): r for r in score_pairs(records, settings=settings).to_pylist()}

    for pair in (("crm:1", "shop:1"), ("crm:2", "shop:2")):
        assert not rows[pair]["corroborated"] and not settings.merges(rows[pair]), rows[pair]
    for pair in (("crm:3", "shop:3"), ("crm:4", "shop:4")):
        assert rows[pair]["corroborated"], rows[pair]


def test_an_em_pass_that_takes_strangers_for_one_person_is_dropped(caplog):
    # At scale, most pairs born on one day in one postcode are strangers: EM on that block learnt
    # an exact first name as no likelier among its "matches" than between strangers, and the
    # names lost their weight. Here every such pair is two strangers, and each person's two records
    # share names and an email (the birth date on one side only): the names must keep their weight.
    rng = random.Random(7)

    def word() -> str:
        return rng.choice(string.ascii_uppercase) + "".join(
            rng.choice("aeiou" if i % 2 else "bcdfglmnprstvz") for i in range(rng.randint(4, 7)))

    firsts, lasts = [word() for _ in range(40)], [word() for _ in range(40)]
    towns = [(f"{10000 + 7 * i}", word()) for i in range(4)]
    rows = []
    for person in range(600):
        first, last, (postcode, city) = rng.choice(firsts), rng.choice(lasts), rng.choice(towns)
        email = f"{first}.{last}{person}@mail.example".lower()
        born = date(1950 + person % 50, 1 + person % 12, 1 + person % 28)
        rows.append(_person(f"p{person}a", first_name=first, last_name=last, email=email, birth_date=born,
                            postcode=postcode, city=city))
        rows.append(_person(f"p{person}b", first_name=first, last_name=last, email=email, city=city))
    for stranger in range(1800):
        postcode, city = rng.choice(towns)
        rows.append(_person(f"s{stranger}", first_name=rng.choice(firsts), last_name=rng.choice(lasts),
                            birth_date=date(1980, 1, 1 + stranger % 5), postcode=postcode, city=city,
                            phone=f"+39333{stranger:07d}", email=f"s{stranger}@else.example"))

    with caplog.at_level(logging.WARNING, logger="activations.identity.linkage"):
        model = train_model(_records(*rows), LinkageSettings(min_records_to_train=100, u_max_pairs=1e5))

    for name in ("first_name", "last_name"):
        exact = next(level for comparison in model["comparisons"] if comparison["output_column_name"] == name
                     for level in comparison["comparison_levels"] if level.get("label_for_charts") == "exact")
        assert exact["m_probability"] >= 0.9, (name, exact)  # 0.51 with the pass kept
    assert "EM pass on birth_date + postcode dropped" in caplog.text
