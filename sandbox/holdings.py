"""What each sandbox destination holds, counted the way a marketer would look in the platform."""

from __future__ import annotations

from typing import Any

import requests


def _size(value: Any) -> int:
    if isinstance(value, dict) and "count" in value:
        return int(value["count"])
    if isinstance(value, dict) and "members" in value:
        return len(value["members"])
    return len(value) if isinstance(value, dict | list) else 0


def holdings(dest_type: str, state: dict[str, Any]) -> dict[str, int]:
    """Counts per collection: contacts, each list, segment, audience or endpoint."""
    found: dict[str, int] = {}
    if "contacts" in state:
        found["contacts"] = len(state["contacts"])
    for sobject, by_field in (state.get("objects") or {}).items():
        found[f"{sobject} records"] = sum(len(records) for records in by_field.values())
    for label, key in (("list", "lists"), ("audience", "audiences"), ("user list", "user_lists")):
        names = state.get("list_defs") or {} if key == "lists" else {}  # HubSpot lists have names
        for list_id, value in (state.get(key) or {}).items():
            found[f"{label} {(names.get(list_id) or {}).get('name') or list_id}"] = _size(value)
            for segment_id, members in (value.get("segments") or {}).items() if isinstance(value, dict) else ():
                found[f"segment {segment_id}"] = len(members)
    for pixel_id, pixel in (state.get("pixels") or {}).items():  # Meta's Conversions API
        found[f"pixel {pixel_id} events"] = len(pixel.get("events") or {})
    for action_id, action in (state.get("conversion_actions") or {}).items():  # Google's events:ingest
        found[f"conversion action {action_id} events"] = len(action.get("events") or {})
    for catalog_id, catalog in (state.get("catalogs") or {}).items():  # Meta's Commerce catalogs
        found[f"catalog {catalog_id} items"] = len(catalog.get("items") or {})
    for source, inputs in (state.get("data_sources") or {}).items():  # Google Merchant Center
        found[f"data source {source.rsplit('/', 1)[-1]} products"] = len(inputs)
    for path, endpoint in (state.get("endpoints") or {}).items():
        found[f"endpoint {path}"] = len(endpoint.get("rows") or {})
    return found


def fetch_holdings(base_url: str, dest_types: list[str]) -> dict[str, dict[str, int]]:
    """Ask a running sandbox what every destination holds."""
    out = {}
    with requests.Session() as http:
        for dest_type in dest_types:
            answer = http.get(f"{base_url}/_sandbox/state/{dest_type}", timeout=60)
            answer.raise_for_status()
            out[dest_type] = holdings(dest_type, answer.json())
    return out
