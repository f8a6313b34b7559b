"""Mentions through the real pipeline: landed as JSON lines, ingested into a DuckDB file, deduplicated by
dbt's staging, scored by the listening step, counted by the listening marts (dbt build on DuckDB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from activations.build import build_warehouse
from activations.ingest import load_landing
from activations.listening.config import load_listening
from activations.listening.scoring import TABLES, score_mentions

# One worker builds the module's warehouse once (without a group, each xdist worker built its own).
pytestmark = pytest.mark.xdist_group("listening_warehouse")

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

LISTENING = """
brand: {name: Casa Lume, aliases: ["#casalume"]}
competitors:
  - {name: Lanterna Living, aliases: ["@lanternaliving"]}
  - {name: Maison Ardesia}
topics:
  delivery: [consegna, delivery]
  price: [prezzi, price]
"""


def mention(mention_id, published_at, text, *, url=None, kind="news", source="Corriere Casa", **more):
    return {"mention_id": mention_id, "url": url, "source_kind": kind, "source_name": source, "title": None,
            "text": text, "author": None, "published_at": published_at, "language": None, **more}


FIRST = [
    # week of Monday 2026-11-16
    mention("M1", "2026-11-17T09:00:00Z", "Casa Lume apre un nuovo negozio a Milano: prezzi ottimi e consegna veloce.",
            url="https://news.example/casa-lume-milano"),
    mention("M2", "2026-11-17T10:00:00Z", "Casa Lume apre a Milano (ripreso)", source="Aggregatore",
            url="https://news.example/casa-lume-milano"),  # the same url: M1, published earlier, counts
    mention("M3", "2026-11-17T08:00:00Z", "La qualità di CASA LUMÉ è pessima, cuciture rotte.", kind="BLOG",
            source="Blog Arredo", url="https://blog.example/3"),
    mention("M4", "2026-11-17T20:00:00+01:00", "la qualità di casa lumé è pessima... cuciture rotte!!", kind="blog",
            source="blog arredo", url="https://blog.example/4"),  # M3's text reposted the same day
    mention("M5", "2026-11-18T12:00:00Z", "Adoro il divano di @lanternaliving 😍", kind="social", source="Instagram"),
    mention("M6", "2026-11-18T13:00:00Z", "Lanterna Living delivery was late again, terrible.", kind="Review",
            source="Trustpilot"),
    mention("M7", "2026-11-18T14:00:00Z", "casalumen and Lume are not the brand", kind="social", source="X"),
    mention("M8", "2026-11-19T09:00:00Z", "Casa Lume abre una tienda en Madrid este mes", source="El País"),
    # week of Monday 2026-11-09
    mention("M9", "2026-11-10T09:00:00Z", "Love my new lamp, great quality! #CasaLume", kind="social", source="X"),
    mention("M10", "2026-11-11T09:00:00Z", "Maison Ardesia launches a new sofa line", source="Home Journal"),
]


def land(landing: Path, name: str, rows: list[dict]) -> None:
    folder = landing / "listening" / "mentions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def build_and_score(landing: Path, warehouse: Path, config: Path):
    report = load_landing(landing, warehouse)
    assert not report.failed_files, str(report)
    staged = build_warehouse(as_of=AS_OF, warehouse=warehouse, select="stg_listening__mentions")
    assert staged.ok, str(staged)
    with duckdb.connect(str(warehouse)) as con:
        scored = score_mentions(con, load_listening(config))
    marts = build_warehouse(as_of=AS_OF, warehouse=warehouse, select="listening_mentions listening_brand_weekly")
    assert marts.ok, str(marts)
    return scored


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("listening")
    config = root / "listening.yml"
    config.write_text(LISTENING)
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    land(landing, "mentions_1.jsonl", FIRST)
    land(landing, "mentions_2.jsonl", FIRST[:1])  # M1 fetched again
    first = build_and_score(landing, warehouse, config)
    return root, landing, warehouse, config, first


def test_the_same_mention_landed_twice_counts_once(built):
    _, _, warehouse, _, first = built
    rows = dict(query(warehouse, "select mention_id, copies from marts.listening_mentions"))
    # M1 twice by id and once by url (M2); M4 is M3's text from the same blog on the same day
    assert rows == {"M1": 3, "M3": 2, "M5": 1, "M6": 1, "M7": 1, "M8": 1, "M9": 1, "M10": 1}
    assert first.mentions == 8 and first.scored == 8


def test_brands_match_whole_names_in_any_case_and_accent(built):
    _, _, warehouse, _, _ = built
    found = query(warehouse, "select mention_id, brand, is_own_brand from listening.mention_brands order by 1, 2")
    assert found == [("M1", "Casa Lume", True), ("M10", "Maison Ardesia", False), ("M3", "Casa Lume", True),
                     ("M5", "Lanterna Living", False), ("M6", "Lanterna Living", False), ("M8", "Casa Lume", True),
                     ("M9", "Casa Lume", True)]
    topics = query(warehouse, "select mention_id, topic from listening.mention_topics order by 1, 2")
    assert topics == [("M1", "delivery"), ("M1", "price"), ("M6", "delivery")]


def test_language_and_sentiment_of_each_mention(built):
    _, _, warehouse, _, _ = built
    rows = {m: (lang, label) for m, lang, label in query(
        warehouse, "select mention_id, language, sentiment from marts.listening_mentions")}
    assert rows["M1"] == ("it", "positive") and rows["M3"] == ("it", "negative")
    assert rows["M5"] == ("it", "positive") and rows["M6"] == ("en", "negative") and rows["M9"] == ("en", "positive")
    assert rows["M8"] == (None, None)  # Spanish: neither language, no sentiment


def test_share_of_voice_per_week_and_topic(built):
    _, _, warehouse, _, _ = built
    weekly = {(str(week), topic, brand): (mentions, round(sov, 3), share_positive, share_negative)
              for week, topic, brand, mentions, sov, share_positive, share_negative in query(warehouse, """
        select week_start, topic, brand, mentions, share_of_voice, share_positive, share_negative
        from marts.listening_brand_weekly""")}
    assert weekly[("2026-11-16", "all", "Casa Lume")] == (3, 0.6, 0.5, 0.5)  # M1 +, M3 -, M8 no sentiment
    assert weekly[("2026-11-16", "all", "Lanterna Living")] == (2, 0.4, 0.5, 0.5)
    assert weekly[("2026-11-09", "all", "Casa Lume")][:2] == (1, 0.5)
    assert weekly[("2026-11-16", "delivery", "Casa Lume")][:2] == (1, 0.5)
    assert ("2026-11-16", "price", "Lanterna Living") not in weekly


def test_a_rerun_scores_only_new_or_changed_mentions(built):
    root, landing, warehouse, config, _ = built
    before = dict(query(warehouse, "select mention_id, scored_at from listening.mention_scores"))
    land(landing, "mentions_3.jsonl", [
        mention("M6", "2026-11-18T13:00:00Z", "Lanterna Living delivery was quick, lovely.", kind="review",
                source="Trustpilot"),  # its text changed
        mention("M11", "2026-11-19T10:00:00Z", "Nuovi saldi da Casa Lume", source="Corriere Casa")])
    again = build_and_score(landing, warehouse, config)
    assert (again.mentions, again.scored) == (9, 2)
    after = dict(query(warehouse, "select mention_id, scored_at from listening.mention_scores"))
    assert {m for m in after if after[m] != before.get(m)} == {"M6", "M11"}
    assert query(warehouse, "select sentiment from marts.listening_mentions where mention_id = 'M6'") == [("positive",)]


def test_the_step_and_dbt_create_the_same_tables():
    from tests.ddl import columns, declared

    assert declared("listening.sql", "listening_tables") == {name: columns(ddl) for name, ddl in TABLES.items()}


def test_the_report_shows_volume_share_of_voice_and_sentiment(built, tmp_path):
    import re

    from activations.report import write_report

    _, _, warehouse, _, _ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        page = Path(write_report(con, tmp_path / "report.html")).read_text(encoding="utf-8")
    section = re.search(r'<section id="listening">(.*?)</section>', page, re.S).group(1)
    assert "Share of voice per week" in section and "Sentiment of Casa Lume" in section
    assert section.count("<svg") == 2
    assert re.search(r"16 Nov 2026</td><td>\d</td><td>\d+\.\d%</td><td>[+-]0\.\d\d</td>", section), section[-800:]


def test_the_dagster_step_scores_like_the_build(built, monkeypatch):
    import dagster as dg

    from orchestration.defs.listening import KEYS, RAN, listening_step
    from orchestration.defs.resources import Warehouse

    _, _, warehouse, config, _ = built
    monkeypatch.setenv("ATTIVA_LISTENING", str(config))
    result = dg.materialize([listening_step], resources={"warehouse": Warehouse(path=str(warehouse))})
    assert result.success
    events = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    materialized = {m.asset_key: m.metadata for m in events}
    assert set(materialized) == set(KEYS)
    assert materialized[KEYS[0]]["scored"].value == 0  # nothing new since the last build
    assert [c.passed for c in result.get_asset_check_evaluations() if c.check_name == RAN] == [True]
