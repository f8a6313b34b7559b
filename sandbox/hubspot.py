"""HubSpot CRM: contacts batch upsert by email and list memberships by record id.

- ``POST /crm/v3/objects/contacts/batch/upsert``: at most 100 inputs, ``idProperty`` "email";
  200 when every row succeeded, 207 with ``numErrors`` and ``errors[]`` otherwise. Each
  contact gets a stable record id (``results[].id``) the list endpoints take.
- Lists v3: ``POST /crm/v3/lists`` creates one (``name``, ``objectTypeId`` "0-1" for contacts,
  ``processingType`` MANUAL, DYNAMIC or SNAPSHOT) and answers ``{list: {listId, ...}}`` with a
  numeric ``listId``; ``GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}`` finds
  one by name (not case sensitive), 404 when there is none.
- ``PUT /crm/v3/lists/{listId}/memberships/add-and-remove``: record ids; answers
  ``{recordsIdsAdded, recordIdsRemoved, recordIdsMissing}`` (HubSpot's own spelling).
  Added/removed list only actual changes; any id not in ``recordIdsMissing`` is in
  the requested state. The list must exist (404 otherwise) and be MANUAL or SNAPSHOT
  (a DYNAMIC list's members follow its filters: 400).
- ``POST /crm/v3/objects/contacts/gdpr-delete`` ``{objectId, idProperty?}``: permanent (GDPR) delete of
  one contact, by record id or, with ``idProperty: "email"``, by address; 204 with no body. The contact
  leaves every list. An address is blocklisted (kept as a SHA-256 here) even when no contact had it; as
  on HubSpot, the blocklist stops imports and the UI, not a later API upsert. An unknown record id is a 404.
- Bearer auth; 190 requests per rolling 10 s and a daily cap; 429 with
  ``policyName`` TEN_SECONDLY_ROLLING or DAILY and ``Retry-After`` (whole seconds until the
  window frees a slot); ``X-HubSpot-RateLimit-*`` headers.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import bearer_token
from sandbox.base import Refusal, VendorApi, iso_now, trace_id
from sandbox.faults import REJECTION_MESSAGE
from sandbox.identifiers import is_email
from sandbox.limits import DailyQuota, WindowCheck, ceil_seconds
from sandbox.wire import JSONBody

MAX_INPUTS = 100
MAX_LIST_RECORD_IDS = 100_000
FIRST_RECORD_ID = 1001
FIRST_LIST_ID = 1
PROCESSING_TYPES = ("MANUAL", "DYNAMIC", "SNAPSHOT")
MEMBERSHIP_TYPES = ("MANUAL", "SNAPSHOT")  # the types whose members the API may add and remove


def _error(status: int, message: str, category: str, **extra: Any) -> JSONBody:
    body = {"status": "error", "message": message, "correlationId": trace_id(), "category": category, **extra}
    return JSONBody(body, status_code=status)


def _row_error(row_id: str, error: str, message: str) -> dict[str, Any]:
    # HubSpot reports property validation failures this way: a JSON list inside the message.
    detail = [{"isValid": False, "message": message, "error": error, "name": "email"}]
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": f"Property values were not valid: {json.dumps(detail)}",
        "context": {"ids": [row_id]},
    }


class HubSpot(VendorApi):
    name = "hubspot"

    def reset_state(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}  # email -> {id, properties, createdAt, updatedAt}
        self.emails_by_id: dict[str, str] = {}
        self.lists: dict[str, dict[str, None]] = {}  # list id -> ordered set of record ids
        self.list_defs: dict[str, dict[str, Any]] = {}  # list id -> {listId, name, objectTypeId, processingType, ...}
        self.next_id = FIRST_RECORD_ID
        self.blocklist: dict[str, None] = {}  # SHA-256 of GDPR-deleted addresses
        self.next_list_id = FIRST_LIST_ID

    def state(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "lists": {list_id: list(members) for list_id, members in self.lists.items()},
            "list_defs": self.list_defs,
            "next_id": self.next_id,
            "gdpr_blocklist": list(self.blocklist),
            "next_list_id": self.next_list_id,
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.contacts = dict(data.get("contacts", {}))
        self.emails_by_id = {c["id"]: email for email, c in self.contacts.items()}
        self.lists = {k: dict.fromkeys(v) for k, v in data.get("lists", {}).items()}
        self.list_defs = dict(data.get("list_defs", {}))
        for list_id in self.lists.keys() - self.list_defs.keys():  # state saved before lists had definitions
            self.list_defs[list_id] = _list_def(list_id, f"list {list_id}", "0-1", "MANUAL")
        self.next_id = int(data.get("next_id", FIRST_RECORD_ID))
        self.blocklist = dict.fromkeys(data.get("gdpr_blocklist", []))
        numeric = [int(i) for i in self.list_defs if i.isdigit()]
        self.next_list_id = int(data.get("next_list_id", max(numeric, default=FIRST_LIST_ID - 1) + 1))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/crm/v3/objects/contacts/batch/upsert", self.endpoint(self.upsert), methods=["POST"]),
            Route("/crm/v3/lists", self.endpoint(self.create_list), methods=["POST"]),
            Route(
                "/crm/v3/lists/object-type-id/{object_type_id}/name/{list_name}",
                self.endpoint(self.list_by_name),
                methods=["GET"],
            ),
            Route(
                "/crm/v3/lists/{list_id}/memberships/add-and-remove",
                self.endpoint(self.memberships),
                methods=["PUT"],
            ),
            Route("/crm/v3/objects/contacts/gdpr-delete", self.endpoint(self.gdpr_delete), methods=["POST"]),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        return bearer_token(request)

    def auth_error(self, missing: bool) -> Response:
        if missing:
            message = "Authentication credentials not found. This API supports OAuth 2.0 authentication and private app access tokens."
        else:
            message = "The access token provided is invalid or has been revoked."
        return _error(401, message, "INVALID_AUTHENTICATION")

    def configure_limits(self, limits: dict[str, Any]) -> None:
        super().configure_limits(limits)
        self.daily = DailyQuota(limits.get("daily"))

    def admit(self) -> WindowCheck:
        # A request refused by either limit must not use up the other one.
        if not self.daily.available():
            return self.daily.acquire()
        check = self.window.acquire()
        if check.allowed:
            self.daily.acquire()
        return check

    def rate_limited(self, check: WindowCheck) -> Response:
        response = self._rate_limit_body(check)
        response.headers["Retry-After"] = str(ceil_seconds(check.reset_after))
        return response

    def _rate_limit_body(self, check: WindowCheck) -> Response:
        if check.policy == "daily":
            return JSONBody(
                {
                    "status": "error",
                    "errorType": "RATE_LIMIT",
                    "policyName": "DAILY",
                    "message": "You have reached your daily limit.",
                    "correlationId": trace_id(),
                },
                status_code=429,
            )
        return JSONBody(
            {
                "status": "error",
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
                "message": "You have reached your ten_secondly_rolling limit.",
                "correlationId": trace_id(),
            },
            status_code=429,
        )

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        headers: dict[str, str] = {}
        window = self.window
        if window.limit is not None:
            used = window.used()
            per_second = math.ceil(window.limit / window.window_seconds)
            headers.update(
                {
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window.window_seconds * 1000)),
                    "X-HubSpot-RateLimit-Max": str(window.limit),
                    "X-HubSpot-RateLimit-Remaining": str(0 if not check.allowed else max(window.limit - used, 0)),
                    "X-HubSpot-RateLimit-Secondly": str(per_second),
                    "X-HubSpot-RateLimit-Secondly-Remaining": str(
                        0 if not check.allowed else max(per_second - window.count_within(1.0), 0)
                    ),
                }
            )
        if self.daily.limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily.limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily.remaining())
        return headers

    def server_error(self) -> Response:
        return _error(
            502, "The server encountered a temporary error and could not complete your request.", "INTERNAL_ERROR"
        )

    def refuse(self, refusal: Refusal) -> Response:
        return _error(refusal.status, refusal.message, refusal.code or "VALIDATION_ERROR")

    # ---- endpoints -----------------------------------------------------------------------------

    async def upsert(self, request: Request) -> Response:
        """Create or update contacts by email; per-row failures in ``errors[]`` with a 207."""
        started = iso_now()
        body = await self.json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise Refusal("Invalid input JSON: 'inputs' must be a list of objects", code="VALIDATION_ERROR")
        if len(inputs) > MAX_INPUTS:
            raise Refusal(
                f"Batch input size {len(inputs)} exceeds the maximum of {MAX_INPUTS} inputs", code="VALIDATION_ERROR"
            )
        ids: list[str] = []
        for i, item in enumerate(inputs):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str | int):
                raise Refusal(f"Invalid input JSON: inputs[{i}] needs an 'id'", code="VALIDATION_ERROR")
            if item.get("idProperty") != "email":
                raise Refusal(
                    f"inputs[{i}]: idProperty {item.get('idProperty')!r} is not supported; use a unique property such as 'email'",
                    code="VALIDATION_ERROR",
                )
            if item.get("properties") is not None and not isinstance(item["properties"], dict):
                raise Refusal(f"Invalid input JSON: inputs[{i}].properties must be an object", code="VALIDATION_ERROR")
            ids.append(str(item["id"]).strip().lower())
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise Refusal(
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique", code="VALIDATION_ERROR"
            )

        now = iso_now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, email in zip(inputs, ids, strict=True):
            raw_id = str(item["id"])
            if not is_email(email):
                errors.append(_row_error(raw_id, "INVALID_EMAIL", f"Email address {raw_id} is invalid"))
                continue
            if self.faults.rejects(email):
                errors.append(_row_error(raw_id, "INVALID_OPTION", f"{raw_id}: {REJECTION_MESSAGE}"))
                continue
            properties = {k: v for k, v in (item.get("properties") or {}).items() if k != "email"}
            contact = self.contacts.get(email)
            new = contact is None
            if contact is None:
                record_id = str(self.next_id)
                self.next_id += 1
                contact = {"id": record_id, "properties": {}, "createdAt": now, "updatedAt": now}
                self.contacts[email] = contact
                self.emails_by_id[record_id] = email
            contact["properties"].update(properties)
            contact["updatedAt"] = now
            shown = {
                **contact["properties"],
                "email": email,
                "hs_object_id": contact["id"],
                "createdate": contact["createdAt"],
                "lastmodifieddate": now,
            }
            results.append(
                {
                    "id": contact["id"],
                    "properties": shown,
                    "createdAt": contact["createdAt"],
                    "updatedAt": now,
                    "archived": False,
                    "new": new,
                }
            )
        body_out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_now(),
        }
        if errors:
            body_out["numErrors"] = len(errors)
            body_out["errors"] = errors
            return JSONBody(body_out, status_code=207)
        return JSONBody(body_out, status_code=200)

    async def memberships(self, request: Request) -> Response:
        """Add and remove record ids in one list."""
        list_id = request.path_params["list_id"]
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("Invalid input JSON: expected an object", code="VALIDATION_ERROR")
        to_add = body.get("recordIdsToAdd") or []
        to_remove = body.get("recordIdsToRemove") or []
        if not isinstance(to_add, list) or not isinstance(to_remove, list):
            raise Refusal("recordIdsToAdd and recordIdsToRemove must be lists of record ids", code="VALIDATION_ERROR")
        if len(to_add) + len(to_remove) > MAX_LIST_RECORD_IDS:
            raise Refusal(
                f"At most {MAX_LIST_RECORD_IDS} record ids can be added or removed in one request",
                code="VALIDATION_ERROR",
            )
        definition = self.list_defs.get(list_id)
        if definition is None:
            return _error(404, f"List does not exist with ID {list_id}.", "OBJECT_NOT_FOUND")
        if definition["processingType"] not in MEMBERSHIP_TYPES:
            raise Refusal(
                f"List {list_id} is {definition['processingType']}: only MANUAL and SNAPSHOT lists take memberships",
                code="VALIDATION_ERROR",
            )
        members = self.lists.setdefault(list_id, {})
        added: list[str] = []
        removed: list[str] = []
        missing: list[str] = []
        for raw in to_add:
            record_id = str(raw)
            if record_id not in self.emails_by_id:
                missing.append(record_id)
            elif record_id not in members:
                members[record_id] = None
                added.append(record_id)
        for raw in to_remove:
            record_id = str(raw)
            if record_id not in self.emails_by_id:
                missing.append(record_id)
            elif record_id in members:
                del members[record_id]
                removed.append(record_id)
        return JSONBody({"recordIdsMissing": missing, "recordsIdsAdded": added, "recordIdsRemoved": removed})

    async def gdpr_delete(self, request: Request) -> Response:
        """Permanently delete one contact by record id or email; 204, or 404 for an unknown record id."""
        body = await self.json_body(request)
        object_id = body.get("objectId") if isinstance(body, dict) else None
        if not isinstance(object_id, str | int) or str(object_id).strip() == "":
            raise Refusal("Invalid input JSON: 'objectId' is required", code="VALIDATION_ERROR")
        id_property = body.get("idProperty")
        if id_property not in (None, "email", "hs_object_id"):
            raise Refusal(f"idProperty {id_property!r} is not supported; use 'email' or leave it out",
                          code="VALIDATION_ERROR")
        if id_property == "email":
            email = str(object_id).strip().lower()
            if not is_email(email):
                raise Refusal(f"Email address {object_id} is invalid", code="VALIDATION_ERROR")
            self.blocklist[hashlib.sha256(email.encode()).hexdigest()] = None
        else:
            email = self.emails_by_id.get(str(object_id).strip())
            if email is None:
                return _error(404, "resource not found", "OBJECT_NOT_FOUND")
            self.blocklist[hashlib.sha256(email.encode()).hexdigest()] = None
        contact = self.contacts.pop(email, None)
        if contact is not None:
            self.emails_by_id.pop(contact["id"], None)
            for members in self.lists.values():
                members.pop(contact["id"], None)
        return Response(status_code=204)

    async def create_list(self, request: Request) -> Response:
        """A new list; names are unique per object type, whatever their case."""
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("Invalid input JSON: expected an object", code="VALIDATION_ERROR")
        name, object_type, processing = body.get("name"), body.get("objectTypeId"), body.get("processingType")
        if not isinstance(name, str) or not name.strip():
            raise Refusal("name is required", code="VALIDATION_ERROR")
        if not isinstance(object_type, str) or not object_type:
            raise Refusal("objectTypeId is required", code="VALIDATION_ERROR")
        if processing not in PROCESSING_TYPES:
            raise Refusal(f"processingType must be one of {', '.join(PROCESSING_TYPES)}", code="VALIDATION_ERROR")
        if self._find_list(object_type, name) is not None:
            raise Refusal(f"A list named '{name}' already exists", code="VALIDATION_ERROR")
        list_id = str(self.next_list_id)
        self.next_list_id += 1
        self.list_defs[list_id] = _list_def(list_id, name, object_type, processing)
        self.lists[list_id] = {}
        return JSONBody({"list": self.list_defs[list_id]})

    async def list_by_name(self, request: Request) -> Response:
        """The list with this name and object type, or 404."""
        object_type, name = request.path_params["object_type_id"], request.path_params["list_name"]
        found = self._find_list(object_type, name)
        if found is None:
            return _error(404, f"List does not exist with name {name} and object type {object_type}.", "OBJECT_NOT_FOUND")
        return JSONBody({"list": {**found, "size": len(self.lists.get(found["listId"], {}))}})

    def _find_list(self, object_type: str, name: str) -> dict[str, Any] | None:
        wanted = name.strip().lower()
        for definition in self.list_defs.values():
            if definition["objectTypeId"] == object_type and definition["name"].strip().lower() == wanted:
                return definition
        return None


def _list_def(list_id: str, name: str, object_type: str, processing: str) -> dict[str, Any]:
    now = iso_now()
    return {
        "listId": list_id,
        "listVersion": 1,
        "name": name,
        "objectTypeId": object_type,
        "processingStatus": "COMPLETE",
        "processingType": processing,
        "createdAt": now,
        "updatedAt": now,
    }
