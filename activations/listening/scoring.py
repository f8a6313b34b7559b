"""The listening step: language, sentiment, brands and topics of every mention, between staging and marts.

Runs after dbt has built staging (`stg_listening__mentions`, deduplicated) and before the listening marts
(`attiva build`, activations/build.py). Sentiment is the expensive part and depends on the text alone, so
it is stored in `listening.mention_scores` keyed by mention_id and text fingerprint, and a run scores only
mentions that are new or whose text changed. Brands and topics depend on listening.yml too, which may
change between runs; matching them is cheap, so `listening.mention_brands` and `listening.mention_topics`
are rewritten whole every run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from activations.engine.dialect import has_table, transaction
from activations.listening.config import Listening
from activations.listening.matching import Vocabulary
from activations.listening.sentiment import language, sentiment

# Copied by dbt_project/macros/listening.sql (tests/listening/test_scoring.py checks they agree).
TABLES = {
    "mention_scores": "mention_id string, text_fingerprint string, language string, sentiment_score double, "
                      "sentiment string, scored_at timestamp",
    "mention_brands": "mention_id string, brand string, is_own_brand boolean",
    "mention_topics": "mention_id string, topic string",
}
STAGED = ("staging", "stg_listening__mentions")


@dataclass
class ScoringResult:
    mentions: int = 0  # deduplicated mentions in staging
    scored: int = 0  # of which new or changed: sentiment computed this run
    brand_mentions: int = 0  # (mention, brand) pairs
    topic_mentions: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"listening: {self.scored:,} new or changed of {self.mentions:,} mentions scored, "
                f"{self.brand_mentions:,} brand and {self.topic_mentions:,} topic matches in {self.seconds:.1f}s")


def ensure_tables(con) -> None:
    con.execute("create schema if not exists listening")
    for name, columns in TABLES.items():
        con.execute(f"create table if not exists listening.{name} ({columns})")


def score_mentions(con, listening: Listening | None, now: datetime | None = None) -> ScoringResult:
    """Score the staged mentions that are new or changed; match brands and topics of all of them."""
    started = time.perf_counter()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    ensure_tables(con)
    if not has_table(con, *STAGED):
        return ScoringResult(seconds=time.perf_counter() - started)
    staged = pl.from_arrow(con.sql(f"""
        select m.mention_id, m.text_fingerprint, coalesce(m.title, '') as title, m.text,
               s.mention_id is null as to_score
        from {'.'.join(STAGED)} as m
        left join listening.mention_scores as s
          on s.mention_id = m.mention_id and s.text_fingerprint = m.text_fingerprint
        order by m.mention_id""").to_arrow_table())
    fresh = staged.filter(pl.col("to_score"))
    rows = []
    for mention_id, fingerprint, text in fresh.select("mention_id", "text_fingerprint", "text").iter_rows():
        lang = language(text)
        score, label = sentiment(text, lang) if lang else (None, None)
        rows.append((mention_id, fingerprint, lang, score, label, now))
    scores = pl.DataFrame(rows, schema={"mention_id": pl.String, "text_fingerprint": pl.String,
                                        "language": pl.String, "sentiment_score": pl.Float64,
                                        "sentiment": pl.String, "scored_at": pl.Datetime("us")}, orient="row")
    brands, topics = _tags(staged, listening)
    with transaction(con):
        if len(scores):
            con.register("fresh_scores", scores.to_arrow())
            con.execute("delete from listening.mention_scores where mention_id in "
                        "(select mention_id from fresh_scores)")
            con.execute("insert into listening.mention_scores select * from fresh_scores")
            con.unregister("fresh_scores")
        for name, frame in (("mention_brands", brands), ("mention_topics", topics)):
            con.execute(f"delete from listening.{name}")
            if len(frame):
                con.register("fresh_tags", frame.to_arrow())
                con.execute(f"insert into listening.{name} select * from fresh_tags")
                con.unregister("fresh_tags")
    return ScoringResult(mentions=len(staged), scored=len(scores), brand_mentions=len(brands),
                         topic_mentions=len(topics), seconds=time.perf_counter() - started)


def _tags(staged: pl.DataFrame, listening: Listening | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(mention_id, brand, is_own_brand) and (mention_id, topic) for every mention, title and text read together."""
    brand_rows: list[tuple[str, str, bool]] = []
    topic_rows: list[tuple[str, str]] = []
    if listening is not None:
        brands = Vocabulary({b.name: b.spellings for b in listening.brands})
        topics = Vocabulary(listening.topics or {})
        for mention_id, title, text in staged.select("mention_id", "title", "text").iter_rows():
            both = f"{title}\n{text}"
            brand_rows += [(mention_id, name, name == listening.brand.name) for name in brands.found(both)]
            topic_rows += [(mention_id, name) for name in topics.found(both)]
    return (pl.DataFrame(brand_rows, schema={"mention_id": pl.String, "brand": pl.String, "is_own_brand": pl.Boolean},
                         orient="row"),
            pl.DataFrame(topic_rows, schema={"mention_id": pl.String, "topic": pl.String}, orient="row"))


def run_scoring(warehouse=None) -> ScoringResult:
    """The listening step on the DuckDB warehouse, with listening.yml (ATTIVA_LISTENING) as it is now."""
    from activations.listening.config import load_listening
    from activations.warehouse import connect

    listening = load_listening()
    with connect(warehouse) as con:
        return score_mentions(con, listening)
