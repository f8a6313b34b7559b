"""The OpenAPI 3.1 document of `attiva serve`, served at /openapi.json and committed as docs/openapi.json.

`python -m activations.serve.openapi` rewrites docs/openapi.json; a test keeps the two equal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from activations import settings
from activations.messaging.inbox import MAX_SHOWN
from activations.serve.events import EVENT_TYPES, EVENTS, MAX_BATCH
from activations.serve.keys import ALL_FIELDS
from activations.serve.store import LOOKUP_TYPES

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _id_params() -> list[dict]:
    return [
        {"name": "id_type", "in": "path", "required": True, "schema": {"type": "string", "enum": list(LOOKUP_TYPES)},
         "description": "the kind of identifier; email and phone are normalized as dbt does (trim, lower-case, E.164)"},
        {"name": "value", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "the identifier, URL-encoded; any case or spacing"},
    ]


IDENTITY_HEADER = {"name": "X-Attiva-Identity", "in": "header", "required": True, "schema": {"type": "string"},
                   "description": "an identity token the shop's backend signed: `<id_type>:<value>:<expires>:<hmac>` "
                                  "(docs/security.md)"}
COMMON_ERRORS = {
    "401": _error("missing or unknown API key (code unauthorized), or a bad identity token (invalid_identity_token)"),
    "403": _error("the key may not call this endpoint, or a browser key asked for someone by email, phone or id "
                  "(code forbidden)"),
    "429": {**_error("the key's rate limit for this client address, or this address's failed authentications, "
                     "were exceeded (code rate_limited)"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
}
LOOKUP_ERRORS = {
    "400": _error("unknown id type (code unknown_id_type), identifier over 320 characters (invalid_identifier), "
                  "several credential headers (invalid_request)"),
    "404": _error("nobody has this identifier (code not_found; server keys only)"),
    "409": _error("the identifier is shared by several people (code ambiguous_identifier; server keys only)"),
    "503": _error("no serving snapshot was built yet (code no_snapshot)"),
}


def openapi_document() -> dict:
    """The API's OpenAPI document."""
    event_properties = {c.name: ({"type": "integer", "minimum": 1, "maximum": 10000} if c.type == "bigint" else
                                 {"type": "string", **({"format": "date-time"} if c.type == "timestamp" else {})})
                        | ({"description": c.description} if c.description else {})
                        for c in EVENTS.columns if c.name != "trust"}  # the server writes trust
    event_properties["event_type"]["enum"] = list(EVENT_TYPES)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Attiva personalization API", "version": "1",
                 "description": "Who a visitor is to the business (traits, audiences, recommendations, promotions), "
                                "read from a snapshot of the warehouse, and event collection into the landing folder. "
                                "A visitor without profiling consent gets no personalization. Server keys look anyone "
                                "up; browser keys (public, in web pages) only the visitor itself, by device_id or by "
                                "/me with a signed identity token, and their unsigned events are untrusted "
                                "(docs/security.md)."},
        "servers": [{"url": f"http://127.0.0.1:{settings.SERVE_PORT}"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/profiles/{id_type}/{value}": {"get": {
                "summary": "Look a visitor up",
                "parameters": _id_params(),
                "responses": {"200": {"description": "the visitor's profile, limited to the key's fields",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}},
                              **LOOKUP_ERRORS, **COMMON_ERRORS}}},
            "/v1/profiles/me": {"get": {
                "summary": "Look up the visitor an identity token signs (browser keys)",
                "parameters": [IDENTITY_HEADER],
                "responses": {"200": {"description": "the visitor's profile; to a browser key an unknown, shared or "
                                                     "unconsenting visitor is personalized: false alike",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}},
                              **LOOKUP_ERRORS, **COMMON_ERRORS}}},
            "/v1/audiences/{name}/members/me": {"get": {
                "summary": "Is the visitor an identity token signs in an audience",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                               IDENTITY_HEADER],
                "responses": {"200": {"description": "membership (false without profiling consent)",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Membership"}}}},
                              **LOOKUP_ERRORS, "404": _error("unknown audience (unknown_audience)"), **COMMON_ERRORS}}},
            "/v1/audiences/{name}/members/{id_type}/{value}": {"get": {
                "summary": "Is a visitor in an audience",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                                "description": "audience name, with or without the aud_ prefix"}, *_id_params()],
                "responses": {"200": {"description": "membership (false without profiling consent)",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Membership"}}}},
                              **LOOKUP_ERRORS, "404": _error("unknown visitor (not_found) or audience (unknown_audience)"),
                              **COMMON_ERRORS}}},
            "/v1/messages/me": {"get": {
                "summary": "The in-app messages due for the visitor an identity token signs (browser keys)",
                "description": "Messages an in_app channel made available (docs/messaging.md#in-app-and-on-site-"
                               f"messages): not expired, not dismissed, highest priority first, at most {MAX_SHOWN}; "
                               "none to a visitor without profiling consent. Report what the page did with each "
                               "through POST /v1/events: message_displayed, message_clicked, message_dismissed "
                               "with its message_id.",
                "parameters": [IDENTITY_HEADER],
                "responses": {"200": {"description": "the visitor's messages; to a browser key an unknown, shared or "
                                                     "unconsenting visitor has none alike",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Messages"}}}},
                              **LOOKUP_ERRORS, **COMMON_ERRORS}}},
            "/v1/messages/{id_type}/{value}": {"get": {
                "summary": "The in-app messages due for a customer (server keys; browser keys by device_id only)",
                "parameters": _id_params(),
                "responses": {"200": {"description": "the customer's messages",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Messages"}}}},
                              **LOOKUP_ERRORS, **COMMON_ERRORS}}},
            "/v1/events": {"post": {
                "summary": "Collect events (one, a list, or {\"events\": [...]})",
                "description": f"At most {MAX_BATCH} events and 1 MiB per request. Each event is validated on its own; "
                               "events of a browser key are untrusted (tied to their anonymous_id only) unless "
                               "sent with an X-Attiva-Identity token, whose identifier they then carry; "
                               "accepted events are on disk in the landing folder before the answer is sent. "
                               "200: all accepted (or duplicates); 207: some rejected, the others kept; "
                               "400: all rejected.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "maxItems": MAX_BATCH},
                    {"type": "object", "properties": {"events": {"type": "array", "maxItems": MAX_BATCH,
                                                                 "items": {"$ref": "#/components/schemas/Event"}}}},
                ]}}}},
                "responses": {s: {"description": d, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EventResults"}}}}
                    for s, d in (("200", "every event accepted or a duplicate"),
                                 ("207", "some events rejected (see results), the others written"),
                                 ("400", "every event rejected (see results)"))}
                | {"413": _error("body or batch too large (code payload_too_large)"),
                   "503": {**_error("the events could not be written durably: retry them (code not_written)"),
                           "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
                   **COMMON_ERRORS}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Profile": {"type": "object", "properties": {
                    "customer_id": {"type": ["string", "null"]},
                    "personalized": {"type": "boolean", "description": "false without profiling consent: all else empty"},
                    "reason": {"type": "string", "enum": ["no_profiling_consent"]},
                    "traits": {"type": "object", "description": "public traits the key may see: "
                               + ", ".join(f for f in ALL_FIELDS if f not in {"audiences", "recommendations", "promotions"})},
                    "audiences": {"type": "array", "items": {"type": "string"}},
                    "recommendations": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
                    "promotions": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
                    "snapshot": {"type": "string"}}},
                "Product": {"type": "object", "properties": {
                    "rank": {"type": "integer"}, "product_id": {"type": "string"}, "product_name": {"type": "string"},
                    "category": {"type": "string"}, "price": {"type": "number"}, "current_price": {"type": "number"},
                    "is_on_promotion": {"type": "boolean"}, "discount_pct": {"type": ["number", "null"]},
                    "promotion_name": {"type": ["string", "null"]},
                    "promotion_ends_at": {"type": ["string", "null"], "format": "date-time"},
                    "score": {"type": "number"}, "reason": {"type": "string"}}},
                "Membership": {"type": "object", "properties": {
                    "audience": {"type": "string"}, "member": {"type": "boolean"}, "personalized": {"type": "boolean"},
                    "snapshot": {"type": "string"}}},
                "Messages": {"type": "object", "properties": {
                    "customer_id": {"type": ["string", "null"]},
                    "personalized": {"type": "boolean", "description": "false without profiling consent: no messages"},
                    "reason": {"type": "string", "enum": ["no_profiling_consent"]},
                    "messages": {"type": "array", "maxItems": MAX_SHOWN, "items": {
                        "type": "object", "properties": {
                            "message_id": {"type": "string", "description": "the id its events carry (message_id)"},
                            "campaign": {"type": "string"}, "step": {"type": "integer"},
                            "title": {"type": "string"}, "body": {"type": "string"},
                            "link": {"type": ["string", "null"]}, "priority": {"type": "integer"},
                            "available_at": {"type": "string", "format": "date-time"},
                            "expires_at": {"type": "string", "format": "date-time"}}}},
                    "snapshot": {"type": "string"}}},
                "Event": {"type": "object", "additionalProperties": False,
                          "required": [c.name for c in EVENTS.columns if c.required],
                          "properties": event_properties},
                "EventResults": {"type": "object", "properties": {
                    "accepted": {"type": "integer"}, "duplicate": {"type": "integer"}, "rejected": {"type": "integer"},
                    "results": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "event_id": {"type": ["string", "null"]},
                        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                        "error": {"$ref": "#/components/schemas/Error/properties/error"}}}}}},
            },
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DOCS_PATH.parent.mkdir(exist_ok=True)
    DOCS_PATH.write_text(render())
    print(f"wrote {DOCS_PATH}", file=sys.stderr)
