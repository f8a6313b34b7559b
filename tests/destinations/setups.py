"""For each sandboxed destination: instance options and a small valid batch, as the engine would send it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from activations.destinations.config import DestinationConfig, destination_class, parse_destination

from .rows import people, prepared

HUBSPOT_LIST = "Attiva test"
OPTIONS: dict[str, dict[str, Any]] = {
    "hubspot": {"list": HUBSPOT_LIST},
    "salesforce": {"sobject": "Contact", "external_id_field": "Attiva_Id__c"},
    "meta": {"audience_id": "6001", "api_version": "v21.0"},
    "google": {
        "operating_account_id": "1234567890",
        "user_list_id": "7001",
        "ad_user_data_consent": "CONSENT_GRANTED",
        "ad_personalization_consent": "CONSENT_GRANTED",
    },
    "mailchimp": {"list_id": "a1b2c3", "segment_id": "8001"},
    "sendgrid": {"list_id": "list-9001", "poll_timeout": 10},
    "brevo": {"list_id": "7"},
    "webhook": {"path": "/hooks/crm"},
    "meta_conversions": {"pixel_id": "9001", "api_version": "v21.0"},
    "google_conversions": {
        "operating_account_id": "1234567890",
        "conversion_action_id": "5001",
        "ad_user_data_consent": "CONSENT_GRANTED",
        "ad_personalization_consent": "CONSENT_GRANTED",
    },
    "meta_catalog": {"catalog_id": "5001", "api_version": "v21.0"},
    "google_merchant": {"account_id": "123456", "data_source_id": "104628"},
}

FIELDS: dict[str, Callable[[int], dict[str, list]]] = {
    "hubspot": lambda n: {"firstname": [f"Name{i}" for i in range(n)]},
    "salesforce": lambda n: {
        "LastName": [f"Last{i}" for i in range(n)],
        "Email": [f"p{i}@example.com" for i in range(n)],
    },
    "mailchimp": lambda n: {"FNAME": [f"Name{i}" for i in range(n)]},
    "sendgrid": lambda n: {"first_name": [f"Name{i}" for i in range(n)], "tier": ["gold"] * n},
    "brevo": lambda n: {"FIRSTNAME": [f"Name{i}" for i in range(n)]},
    "webhook": lambda n: {"score": list(range(n))},
    "meta_conversions": lambda n: {
        "event_name": ["Purchase"] * n,
        "event_time": [datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=i + 1) for i in range(n)],
        "action_source": ["website"] * n,
        "value": [10.5 * (i + 1) for i in range(n)],
        "currency": ["EUR"] * n,
    },
    "google_conversions": lambda n: {
        "event_timestamp": [datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=i + 1) for i in range(n)],
        "event_source": ["WEB"] * n,
        "conversion_value": [10.5 * (i + 1) for i in range(n)],
        "currency": ["EUR"] * n,
    },
}


def catalog_fields(n: int) -> dict[str, list]:
    """The fields every catalog sync maps (meta_catalog, google_merchant), for `n` products."""
    return {
        "title": [f"Product {i}" for i in range(n)],
        "description": [f"Product {i} (shoes)" for i in range(n)],
        "availability": ["in stock"] * n,
        "condition": ["new"] * n,
        "price": [10.0 + i for i in range(n)],
        "currency": ["EUR"] * n,
        "link": [f"https://shop.test/p/{i}" for i in range(n)],
        "image_link": [f"https://shop.test/i/{i}.jpg" for i in range(n)],
    }


FIELDS["meta_catalog"] = FIELDS["google_merchant"] = catalog_fields


def batch_for(client, n: int = 3, start: int = 0) -> pl.DataFrame:
    """A valid batch for `client`: its identifiers prepared, plus fields when it takes them."""
    dest_type = client.capabilities.type
    extra = FIELDS[dest_type](n) if dest_type in FIELDS else {}
    frame = people(n, start=start, **extra)
    return prepared(client, frame)


def destination_config(name: str, dest_type: str, options: dict[str, Any], env: dict[str, str]) -> DestinationConfig:
    """An instance as a sync uses it: per-sync options (HubSpot's `list`) go through `for_sync`, as
    `syncs.run` does, the rest through destinations.yml's parser."""
    spec = destination_class(dest_type).options
    per_sync = {key: value for key, value in options.items() if key in spec and spec[key].per_sync}
    rest = {key: value for key, value in options.items() if key not in per_sync}
    return parse_destination(name, {"type": dest_type, **rest}, env=env).for_sync(per_sync)


def hubspot_list(state: dict[str, Any], name: str = HUBSPOT_LIST) -> list[str]:
    """The record ids in the sandbox's HubSpot list called `name` (case does not matter, as at HubSpot)."""
    ids = [list_id for list_id, definition in state["list_defs"].items()
           if definition["name"].lower() == name.lower()]
    assert len(ids) <= 1, f"two lists named {name!r}"
    return state["lists"].get(ids[0], []) if ids else []
