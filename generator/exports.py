"""How each source system writes its values: timestamp formats, dates, decimals, booleans.

Generators keep timestamps as epoch seconds (events: milliseconds); this turns a
source's contract columns into the text its export would contain. Each system
has its own timestamp style, as real exports do; events carry UTC ("Z") or, for
about one in eight, local Italian time with its offset (+01:00 / +02:00).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from activations.ingest.contract import Source

TIMESTAMP_FORMATS = {
    "crm_contacts": "%Y-%m-%d %H:%M:%S",
    "shop_customers": "%Y-%m-%dT%H:%M:%SZ",
    "shop_products": "%Y-%m-%dT%H:%M:%SZ",
    "shop_promotions": "%Y-%m-%d %H:%M:%S",
    "shop_orders": "%Y-%m-%dT%H:%M:%SZ",
    "consent": "%Y-%m-%d %H:%M:%S",
    "email_engagement": "%Y-%m-%dT%H:%M:%SZ",
}
EVENT_UTC = "%Y-%m-%dT%H:%M:%S%.3fZ"
EVENT_LOCAL = "%Y-%m-%dT%H:%M:%S%.3f%:z"
LOCAL_TIME_SHARE = 0.12


def money(column: str) -> pl.Expr:
    """A double as text with two decimals (12.90), as shops export prices."""
    cents = (pl.col(column) * 100).round(0).cast(pl.Int64)
    return pl.when(pl.col(column).is_not_null()).then(
        pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))
    )


def render(frame: pl.DataFrame, source: Source) -> pl.DataFrame:
    """The source's contract columns, in contract order, as the text of a CSV export."""
    fmt = TIMESTAMP_FORMATS.get(source.name, "%Y-%m-%dT%H:%M:%SZ")
    columns = []
    for c in source.columns:
        col = pl.col(c.name)
        if c.type == "timestamp":
            columns.append(pl.from_epoch(col, time_unit="s").dt.strftime(fmt).alias(c.name))
        elif c.type == "date":
            columns.append(col.dt.strftime("%Y-%m-%d").alias(c.name))
        elif c.type == "double":
            columns.append(money(c.name).alias(c.name))
        elif c.type in ("bigint", "boolean"):
            columns.append(col.cast(pl.String).alias(c.name))
        else:
            columns.append(col.cast(pl.String))
    return frame.select(columns)


def render_events(rng: np.random.Generator, frame: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Event columns for JSON lines: occurred_at as ISO 8601 text (UTC or local with offset), quantity a number."""
    at = pl.from_epoch("occurred_at", time_unit="ms").dt.replace_time_zone("UTC")
    local = pl.lit(pl.Series(rng.random(frame.height) < LOCAL_TIME_SHARE))
    occurred = (
        pl.when(local)
        .then(at.dt.convert_time_zone("Europe/Rome").dt.strftime(EVENT_LOCAL))
        .otherwise(at.dt.strftime(EVENT_UTC))
    )
    # The shop's own collector writes these files: no `trust` stamp, so they count as first-party (trusted).
    columns = [occurred.alias(c.name) if c.name == "occurred_at" else pl.col(c.name) for c in source.columns
               if c.name in frame.columns]
    return frame.select(columns)
