"""The catalog clients against the sandbox, over real loopback HTTP: how each spells a catalog row, Meta's
per-item errors mapped back by id or line, a batch Meta has not finished never confirmed, and Google's
per-product refusals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import polars as pl
import pytest

from activations.destinations.base import RetryableError
from activations.destinations.google_merchant import product_attributes
from activations.destinations.meta.catalog import finished_errors, item_data, item_errors

from .rows import people, prepared
from .setups import OPTIONS, catalog_fields

ROW = {"title": "Trail Shoe", "description": "Trail Shoe (shoes)", "brand": None, "availability": "in stock",
       "condition": "new", "price": Decimal("89.9"), "currency": "EUR", "sale_price": Decimal("69.90"),
       "sale_starts_at": datetime(2026, 12, 1), "sale_ends_at": datetime(2026, 12, 31, 23, 59), "link": "https://s/p",
       "image_link": "https://s/i.jpg", "custom_label_0": "winter"}


def test_a_catalog_row_as_meta_and_google_spell_it():
    meta = item_data("p1", ROW)
    assert (meta["id"], meta["price"], meta["sale_price"]) == ("p1", "89.90 EUR", "69.90 EUR")
    assert meta["sale_price_effective_date"] == "2026-12-01T00:00+00:00/2026-12-31T23:59+00:00"
    assert "brand" not in meta and meta["custom_label_0"] == "winter" and "currency" not in meta
    # No promotion: the sale is cleared at Meta (an absent field would keep the old one).
    ended = item_data("p1", {**ROW, "sale_price": None, "sale_starts_at": None, "sale_ends_at": None})
    assert (ended["sale_price"], ended["sale_price_effective_date"]) == ("", "")

    google = product_attributes(ROW)
    assert google["price"] == {"amountMicros": "89900000", "currencyCode": "EUR"}
    assert google["salePrice"] == {"amountMicros": "69900000", "currencyCode": "EUR"}
    assert google["salePriceEffectiveDate"] == {"startTime": "2026-12-01T00:00+00:00", "endTime": "2026-12-31T23:59+00:00"}
    assert (google["availability"], google["condition"], google["imageLink"]) == ("IN_STOCK", "NEW", "https://s/i.jpg")
    assert "image_link" not in google and "currency" not in google and "brand" not in google
    assert "salePrice" not in product_attributes({**ROW, "sale_price": None})


def test_metas_item_errors_are_mapped_by_id_else_by_line():
    keys = ["p1", "p2", "p3"]
    errors = [{"id": "p3", "line": 0, "message": "bad price"}, {"line": 1, "message": "bad link"},
              {"id": "p3", "message": "bad image"}, {"id": "elsewhere", "message": "not ours"}, "junk"]
    assert item_errors(errors, keys) == {"p3": "bad price; bad image", "p2": "bad link"}


def test_items_meta_counted_errors_for_without_naming_them_are_not_confirmed():
    keys = ["p1", "p2", "p3"]
    named = {"status": "finished", "errors_total_count": 1, "errors": [{"id": "p2", "message": "bad link"}]}
    assert finished_errors(named, keys) == {"p2": "bad link"}
    for status in ({"status": "finished", "errors_total_count": 2, "errors": [{"id": "p2", "message": "bad link"}]},
                   {"status": "finished", "errors_total_count": 2,
                    "errors": [{"id": "p2", "message": "bad link"}, {"id": "elsewhere", "message": "?"}]}):
        refused = finished_errors(status, keys)
        assert refused["p2"] == "bad link" and set(refused) == {"p1", "p2", "p3"}
        assert "without naming every item" in refused["p1"]


def catalog_batch(n: int) -> pl.DataFrame:
    return people(n, **catalog_fields(n))


def test_meta_confirms_only_the_items_its_finished_batch_did_not_refuse(sandbox):
    client = sandbox.client("meta_catalog", **OPTIONS["meta_catalog"])
    batch = prepared(client, catalog_batch(3)).with_columns(
        pl.when(pl.col("_key") == "k1").then(pl.lit("sold out")).otherwise(pl.col("availability")).alias("availability"))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True]
    assert "Invalid availability" in results[1].reason and results[1].reason.startswith("meta_catalog: ")
    assert set(sandbox.state("meta_catalog")["catalogs"]["5001"]["items"]) == {"k0", "k2"}
    assert [r.ok for r in client.send("remove", batch.select("_key"))] == [True, True, True]
    assert sandbox.state("meta_catalog")["catalogs"]["5001"]["items"] == {}


def test_a_batch_meta_has_not_finished_is_not_confirmed(sandbox):
    client = sandbox.client("meta_catalog", poll_timeout=0, **OPTIONS["meta_catalog"])
    with pytest.raises(RetryableError, match="still 'started'"):
        client.send("upsert", prepared(client, catalog_batch(2)))


def test_google_rejects_the_product_it_refuses_and_takes_the_others(sandbox):
    client = sandbox.client("google_merchant", **OPTIONS["google_merchant"])
    batch = prepared(client, catalog_batch(3)).with_columns(
        pl.when(pl.col("_key") == "k1").then(None).otherwise(pl.col("price")).alias("price"))
    results = client.send("upsert", batch)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].status == 400 and "product_attributes.price" in results[1].reason
    assert results[0].destination_id == "accounts/123456/productInputs/it~IT~k0"
    # A removal of what Google does not hold is done: it is not there.
    assert [(r.ok, r.status) for r in client.send("remove", batch.select("_key"))] == [(True, 200), (True, 404),
                                                                                      (True, 200)]
