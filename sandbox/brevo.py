"""Brevo (Sendinblue): contacts and list membership.

- ``POST /v3/contacts/lists/{listId}/contacts/add`` and ``.../remove`` with
  ``{"emails": [<=150]}`` (or ``{"ids": [...]}``; remove also takes ``{"all": true}``):
  201 ``{"contacts": {"success": [...], "failure": [...]}}``. As on Brevo, only
  *existing* contacts can be added to a list: an unknown or invalid address is a
  ``failure``; removing an address that is not in the list is a ``failure`` too.
- Contacts are created with ``POST /v3/contacts`` (``{email, attributes, listIds,
  updateEnabled}``: 201 ``{id}``, or 204 when ``updateEnabled`` updated an existing one)
  or in bulk with ``POST /v3/contacts/import`` (``{jsonBody: [{email, attributes}],
  listIds, updateExistingContacts}``: 202 ``{processId}``; applied at once here).
- ``DELETE /v3/contacts/{identifier}`` (an email, urlencoded, or a contact id; ``identifierType``
  ``email_id`` / ``contact_id`` says which): deletes the contact and its list memberships, 204;
  404 ``document_not_found`` when there is no such contact.
- Header ``api-key``; 401 ``{"code": "unauthorized", ...}``; ``x-sib-ratelimit-limit /
  -remaining / -reset`` (seconds until the window frees) on every answer, 429 past it.
  Lists are created on first use.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.base import Refusal, VendorApi, iso_now
from sandbox.faults import REJECTION_MESSAGE
from sandbox.identifiers import is_email
from sandbox.limits import WindowCheck, ceil_seconds
from sandbox.wire import JSONBody

MAX_LIST_EMAILS = 150
MAX_IMPORT_BYTES = 8 * 1024 * 1024


def error(status: int, code: str, message: str) -> JSONBody:
    return JSONBody({"code": code, "message": message}, status_code=status)


class Brevo(VendorApi):
    name = "brevo"

    def reset_state(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}  # lower-cased email -> {id, email, attributes, listIds}
        self.by_id: dict[int, str] = {}
        self.lists: dict[str, dict[str, None]] = {}  # list id -> ordered set of emails
        self.next_id = 1
        self.next_process = 1

    def state(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "lists": {list_id: list(emails) for list_id, emails in self.lists.items()},
            "next_id": self.next_id,
            "next_process": self.next_process,
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.contacts = dict(data.get("contacts", {}))
        self.by_id = {int(c["id"]): key for key, c in self.contacts.items()}
        self.lists = {k: dict.fromkeys(v) for k, v in data.get("lists", {}).items()}
        self.next_id = int(data.get("next_id", 1))
        self.next_process = int(data.get("next_process", 1))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v3/contacts", self.endpoint(self.create_contact), methods=["POST"]),
            Route("/v3/contacts/import", self.endpoint(self.import_contacts), methods=["POST"]),
            Route("/v3/contacts/{identifier}", self.endpoint(self.delete_contact), methods=["DELETE"]),
            Route("/v3/contacts/lists/{list_id}/contacts/add", self.endpoint(self.add_to_list), methods=["POST"]),
            Route(
                "/v3/contacts/lists/{list_id}/contacts/remove", self.endpoint(self.remove_from_list), methods=["POST"]
            ),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        return request.headers.get("api-key") or None

    def auth_error(self, missing: bool) -> Response:
        return error(401, "unauthorized", "Key not found" if not missing else "API Key is not enabled")

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        if check.limit is None:
            return {}
        return {
            "x-sib-ratelimit-limit": str(check.limit),
            "x-sib-ratelimit-remaining": str(check.remaining),
            "x-sib-ratelimit-reset": str(ceil_seconds(check.reset_after)),
        }

    def rate_limited(self, check: WindowCheck) -> Response:
        return error(
            429,
            "too_many_requests",
            "The rate limit for this endpoint has been exceeded; retry after x-sib-ratelimit-reset seconds.",
        )

    def server_error(self) -> Response:
        return error(500, "internal_error", "An internal error occurred; please retry.")

    def refuse(self, refusal: Refusal) -> Response:
        code = (
            refusal.code
            if refusal.code in ("document_not_found", "duplicate_parameter", "missing_parameter")
            else "invalid_parameter"
        )
        return error(refusal.status, code, refusal.message)

    # ---- contacts ------------------------------------------------------------------------------

    def _list_id(self, request: Request) -> str:
        raw = request.path_params["list_id"]
        if not raw.isdigit() or int(raw) <= 0:
            raise Refusal("listId should be a positive integer")
        lst = str(int(raw))
        self.lists.setdefault(lst, {})
        return lst

    def _save(self, email: str, attributes: dict[str, Any] | None, list_ids: list[Any], update: bool) -> bool:
        """Create or update a contact; True if it was created."""
        key = email.strip().lower()
        now = iso_now()
        contact = self.contacts.get(key)
        created = contact is None
        if created:
            contact = {"id": self.next_id, "email": key, "attributes": {}, "listIds": [], "createdAt": now}
            self.by_id[self.next_id] = key
            self.next_id += 1
            self.contacts[key] = contact
        elif not update:
            return False
        if attributes:
            contact["attributes"].update(attributes)
        contact["modifiedAt"] = now
        for raw in list_ids:
            list_id = str(int(raw))
            self.lists.setdefault(list_id, {})[key] = None
            if int(list_id) not in contact["listIds"]:
                contact["listIds"].append(int(list_id))
        return created

    async def create_contact(self, request: Request) -> Response:
        """Create one contact (201 {id}), or update it with updateEnabled (204)."""
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("Invalid request body")
        email = body.get("email")
        if not is_email(email):
            raise Refusal("Invalid email address")
        list_ids = body.get("listIds") or []
        if not isinstance(list_ids, list) or not all(isinstance(x, int) and x > 0 for x in list_ids):
            raise Refusal("listIds should be an array of positive integers")
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise Refusal("attributes should be an object")
        key = email.strip().lower()
        if key in self.contacts and not body.get("updateEnabled"):
            raise Refusal(
                "Unable to create contact, email is already associated with another Contact", code="duplicate_parameter"
            )
        if self.faults.rejects(key):
            raise Refusal(f"{email}: {REJECTION_MESSAGE}")
        created = self._save(email, attributes, list_ids, update=True)
        if created:
            return JSONBody({"id": self.contacts[key]["id"]}, status_code=201)
        return Response(status_code=204)

    async def import_contacts(self, request: Request) -> Response:
        """Bulk create/update contacts from jsonBody; invalid addresses are skipped."""
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise Refusal(f"jsonBody must not exceed {MAX_IMPORT_BYTES} bytes")
        body = await self.json_body(request)
        rows = body.get("jsonBody") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise Refusal(
                "jsonBody is required (fileBody and fileUrl are not served by the sandbox)", code="missing_parameter"
            )
        list_ids = body.get("listIds") or []
        if not isinstance(list_ids, list) or not all(isinstance(x, int) and x > 0 for x in list_ids):
            raise Refusal("listIds should be an array of positive integers")
        update = body.get("updateExistingContacts", True) is not False
        for row in rows:
            email = row.get("email") if isinstance(row, dict) else None
            if is_email(email) and not self.faults.rejects(email.strip().lower()):
                attributes = row.get("attributes") if isinstance(row.get("attributes"), dict) else None
                self._save(email, attributes, list_ids, update=update)
        process_id = self.next_process
        self.next_process += 1
        return JSONBody({"processId": process_id}, status_code=202)

    def _targets(self, body: Any, allow_all: bool) -> tuple[list[Any], bool]:
        if not isinstance(body, dict):
            raise Refusal("Invalid request body")
        emails, ids = body.get("emails"), body.get("ids")
        everyone = allow_all and body.get("all") is True
        given = [x for x in (emails, ids) if x is not None]
        if len(given) + everyone != 1:
            raise Refusal("Provide exactly one of emails, ids" + (" or all" if allow_all else ""))
        if everyone:
            return [], True
        items = given[0]
        if not isinstance(items, list) or not items:
            raise Refusal("emails/ids must be a non-empty array")
        if len(items) > MAX_LIST_EMAILS:
            raise Refusal(f"You can pass a maximum of {MAX_LIST_EMAILS} emails or ids in one request")
        return items, False

    def _email_of(self, item: Any) -> str | None:
        if isinstance(item, int) and not isinstance(item, bool):
            return self.by_id.get(item)
        if isinstance(item, str) and is_email(item):
            return item.strip().lower()
        return None

    async def add_to_list(self, request: Request) -> Response:
        """Add existing contacts to a list; unknown or invalid ones are failures."""
        list_id = self._list_id(request)
        items, _ = self._targets(await self.json_body(request), allow_all=False)
        members = self.lists[list_id]
        success, failure = [], []
        for item in items:
            key = self._email_of(item)
            if key is None or key not in self.contacts or self.faults.rejects(key):
                failure.append(item)
                continue
            members[key] = None
            contact_lists = self.contacts[key]["listIds"]
            if int(list_id) not in contact_lists:
                contact_lists.append(int(list_id))
            success.append(item)
        return JSONBody({"contacts": {"success": success, "failure": failure}}, status_code=201)

    async def remove_from_list(self, request: Request) -> Response:
        """Remove contacts from a list; ones not in the list are failures."""
        list_id = self._list_id(request)
        items, everyone = self._targets(await self.json_body(request), allow_all=True)
        members = self.lists[list_id]
        if everyone:
            items = list(members)
        success, failure = [], []
        for item in items:
            key = self._email_of(item)
            if key is None or key not in members:
                failure.append(item)
                continue
            del members[key]
            contact = self.contacts.get(key)
            if contact and int(list_id) in contact["listIds"]:
                contact["listIds"].remove(int(list_id))
            success.append(item)
        return JSONBody({"contacts": {"success": success, "failure": failure}}, status_code=201)

    async def delete_contact(self, request: Request) -> Response:
        """Delete one contact (by email or id) and its list memberships; 404 when there is none."""
        identifier = request.path_params["identifier"].strip()
        kind = request.query_params.get("identifierType") or ("email_id" if "@" in identifier else "contact_id")
        if kind == "email_id":
            key = identifier.lower()
        elif kind == "contact_id":
            if not identifier.isdigit():
                raise Refusal("contact_id identifiers are numbers")
            key = self.by_id.get(int(identifier), "")
        else:
            raise Refusal(f"identifierType {kind!r} is not served by the sandbox (email_id, contact_id)")
        contact = self.contacts.pop(key, None)
        if contact is None:
            raise Refusal("Contact does not exist", status=404, code="document_not_found")
        self.by_id.pop(int(contact["id"]), None)
        for members in self.lists.values():
            members.pop(key, None)
        return Response(status_code=204)
