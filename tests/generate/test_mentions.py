"""The generator's web mentions (generator/listening.py): copies of every kind staging must fold, mixed
languages, the brand and its competitors, a planted sentiment trend, and the truth behind each row."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from generator.clock import epoch_seconds
from generator.listening import BRAND, COMPETITORS, DAYS_BACK, mentions
from generator.run import generate
from generator.streams import stream

AS_OF = epoch_seconds(datetime(2026, 11, 20, tzinfo=UTC))


def test_mentions_are_messy_and_their_truth_says_how():
    frame, truth = mentions(stream(7, "listening"), 5000, AS_OF)
    assert frame.height == truth.height and frame["mention_id"].to_list() == truth["mention_id"].to_list()
    copies = truth["copy"].value_counts()
    assert set(copies["copy"].drop_nulls()) == {"id", "url", "text"}  # refetched, syndicated, reposted
    originals = truth.filter(pl.col("copy").is_null())
    assert originals["mention_id"].n_unique() == originals.height
    assert 0.02 < originals["language"].null_count() / originals.height < 0.1  # Spanish, French, German
    assert frame["source_kind"].str.to_lowercase().is_in(["news", "blog", "social", "review"]).all()
    assert (frame["source_kind"] != frame["source_kind"].str.to_lowercase()).any()  # "News", "BLOG"
    text = " ".join(frame["text"])
    assert BRAND in text and all(c in text for c in COMPETITORS) and "😍" in text and "#casalume" in text
    # Planted: the brand's mentions grow more positive over the period
    brand = originals.join(frame.select("mention_id", "published_at"), on="mention_id").filter(
        pl.col("brand") & pl.col("label").is_not_null())
    half = AS_OF - DAYS_BACK * 86400 // 2
    share = [(part["label"] == "positive").mean() for part in (brand.filter(pl.col("published_at") < half),
                                                               brand.filter(pl.col("published_at") >= half))]
    assert share[1] > share[0] + 0.1, share


def test_generate_lands_mentions_and_their_truth(tmp_path):
    summary = generate(customers=300, seed=3, out=tmp_path, as_of=datetime(2026, 11, 20, tzinfo=UTC))
    assert summary.rows["web_mentions"] > 300
    assert list((tmp_path / "listening" / "mentions").glob("web_mentions_*.csv"))
    assert pl.read_parquet(tmp_path / "_truth" / "mentions.parquet").height > 300
