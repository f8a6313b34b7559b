"""For each sandboxed destination: instance options and a small valid batch, as the engine would send it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from .rows import people, prepared

OPTIONS: dict[str, dict[str, Any]] = {
    "hubspot": {"list_id": "5001"},
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
}


def batch_for(client, n: int = 3, start: int = 0) -> pl.DataFrame:
    """A valid batch for `client`: its identifiers prepared, plus fields when it takes them."""
    dest_type = client.capabilities.type
    extra = FIELDS[dest_type](n) if dest_type in FIELDS else {}
    frame = people(n, start=start, **extra)
    return prepared(client, frame)
