"""Batches shaped the way the engine hands them to a client."""

from __future__ import annotations

import polars as pl

from activations.destinations.base import Destination
from activations.destinations.identifiers import prepare_identifiers


def people(n: int, start: int = 0, **extra: list) -> pl.DataFrame:
    """`n` rows with `_key`, `email`, `phone`, `external_id` and any extra columns."""
    keys = range(start, start + n)
    return pl.DataFrame(
        {
            "_key": [f"k{i}" for i in keys],
            "email": [f"person{i}@example.com" for i in keys],
            "phone": [f"+39 333 {i:07d}" for i in keys],
            "external_id": [f"C{i:05d}" for i in keys],
            **extra,
        }
    )


def prepared(client: Destination, frame: pl.DataFrame) -> pl.DataFrame:
    """What the engine sends: identifiers normalized (and hashed) for this destination, other ids dropped."""
    caps = client.capabilities
    frame = frame.drop([c for c in ("email", "phone", "external_id") if c not in caps.identifiers])
    if not caps.identifiers:  # rows that name no one (a catalog's products) go as they are
        return frame
    result = prepare_identifiers(frame, caps)
    assert result.invalid.height == 0, result.invalid
    return result.valid
