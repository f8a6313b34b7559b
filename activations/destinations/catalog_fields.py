"""What the product catalog destinations agree on: the neutral fields a catalog row carries
(dbt's catalog_products) and how its dates are written. Each client spells the rest its own way."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from activations.destinations.base import Capabilities

# Fields every catalog sync maps (the catalog_products model has them all).
REQUIRED_FIELDS = ("title", "description", "availability", "condition", "price", "currency", "link", "image_link")


def catalog_capabilities(type_: str, *, batch_size: int, max_concurrency: int) -> Capabilities:
    """What a product catalog platform offers: a mirror of rows that name no one, each known by its
    product id (the sync's key), written idempotently (an upsert by id, a delete by id). Neither Meta
    nor Google publishes a pace for it: they signal throttling, which the engine waits out."""
    return Capabilities(
        type=type_,
        batch_size=batch_size,
        requests_per_window=None,
        window_seconds=None,
        max_concurrency=max_concurrency,
        modes=frozenset({"upsert", "mirror", "full_resync"}),
        identifiers=(),
        hashing=None,
        idempotent_writes=True,
        keyed_by_identifiers=False,
        required_fields=REQUIRED_FIELDS,
    )


def iso_instant(value: Any) -> str:
    """A warehouse timestamp (naive is UTC) or date as ISO 8601 with its offset, to the minute."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="minutes")
