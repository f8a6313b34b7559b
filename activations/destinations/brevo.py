"""Brevo (ex Sendinblue): contacts in a list.

Brevo only adds *existing* contacts to a list, so an upsert is two requests:
`POST /v3/contacts/import` creates or updates the contacts (mapped fields as
attributes) with the list in `listIds`, then
`POST /v3/contacts/lists/{id}/contacts/add` (up to 150 emails) confirms each
row: its answer sorts the emails into `contacts.success` and `contacts.failure`.
Only a success confirms a row; Brevo runs imports in the background, so a
contact whose import has not finished yet fails now and succeeds on the next
attempt. Removal is `.../contacts/remove` (a failure there means the contact
was not in the list: the state removal asks for).

Erasure (`erase`): `DELETE /v3/contacts/{email}?identifierType=email_id`, 204 (the contact and its
list memberships are gone); 404 `document_not_found`: nothing held.

Auth is the `api-key` header; a 429 says when the window resets in
`x-sib-ratelimit-reset` (seconds).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import polars as pl
import requests

from activations.destinations.base import BatchPart, Capabilities, Operation, RetryableError, RowResult, Secret
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpDestination,
    field_rows,
    header_float,
    present_fields,
    require_columns,
    response_json,
    retry_after_header,
)

MAX_EMAILS = 150
# Brevo answers 400 instead of a success list when every contact is already in the list.
ALREADY_IN_LIST = "already in list"


class BrevoDestination(HttpDestination):
    """Contacts in one Brevo list."""

    type = "brevo"
    options = {
        "list_id": Option(str, required=True, help="the contact list id (a number)"),
        "create_contacts": Option(bool, default=True, help="create unknown contacts (import) before adding them"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        list_id = config.require("list_id")
        if not list_id.isdigit():
            raise config.error("Brevo list ids are numbers", "list_id")
        self.list_id = int(list_id)
        self.create_contacts = bool(config.get("create_contacts", True))

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        creates = bool(config.get("create_contacts", True))
        return Capabilities(
            type=cls.type,
            batch_size=MAX_EMAILS,
            requests_per_window=5 if creates else 10,  # 10 requests/s; an upsert is import + add
            window_seconds=1.0,
            max_concurrency=4,
            modes=frozenset({"upsert", "mirror", "full_resync"}),
            identifiers=("email",),
            hashing=None,
            idempotent_writes=True,
            accepts_fields=creates,  # attributes travel with the import
            required_identifiers=("email",),
        )

    def auth_headers(self, token: Secret) -> dict[str, str]:
        return {"api-key": token.reveal()}

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Upsert the contacts into the list, or take them out of it."""
        if batch.height == 0:
            return []
        require_columns(batch, ["email"], self.type)
        emails = [str(e) for e in batch["email"].to_list()]
        unique = list(dict.fromkeys(emails))
        if operation == "remove":
            contacts = self._membership("remove", unique)
            return [
                RowResult(True, 201, None if email.lower() in contacts["success"] else "brevo: was not in the list")
                for email in emails
            ]
        if self.create_contacts:
            self._import(batch, emails)
        contacts = self._membership("add", unique)
        results = []
        for email in emails:
            key = email.lower()
            if key in contacts["success"]:
                results.append(RowResult(True, 201))
            elif key in contacts["already"]:
                results.append(RowResult(True, 400, "brevo: already in the list"))
            else:
                reason = "not a Brevo contact yet (import pending) or invalid email"
                results.append(RowResult(False, 201, f"brevo: {reason}"))
        return results

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Delete each contact from Brevo (every list with it)."""
        require_columns(rows, ["email"], self.type)
        results = []
        for email in rows["email"].to_list():
            if not email:
                results.append(RowResult(False, None, "brevo: no email to find the contact by"))
                continue
            response = self.http.request(
                "DELETE", f"/v3/contacts/{quote(str(email), safe='')}", params={"identifierType": "email_id"}
            )
            if response.status_code == 404:
                results.append(RowResult(True, 404, "brevo: no such contact"))
                continue
            self._check(response)
            results.append(RowResult(True, response.status_code))
        return results

    def _import(self, batch: pl.DataFrame, emails: list[str]) -> None:
        fields = self.field_columns(batch)
        rows: dict[str, dict[str, Any]] = {}
        for email, row in zip(emails, field_rows(batch, fields), strict=True):
            entry: dict[str, Any] = {"email": email}
            attributes = present_fields(row, fields)
            if attributes:
                entry["attributes"] = attributes
            rows.setdefault(email.lower(), entry)
        body = {"jsonBody": list(rows.values()), "listIds": [self.list_id], "updateExistingContacts": True}
        self._check(self.http.request("POST", "/v3/contacts/import", json_body=body))

    def _membership(self, action: str, emails: list[str]) -> dict[str, set[str]]:
        """Add or remove emails; the lower-cased emails Brevo listed as success, failure or already there."""
        response = self.http.request(
            "POST", f"/v3/contacts/lists/{self.list_id}/contacts/{action}", json_body={"emails": emails}
        )
        message = str((response_json(response) or {}).get("message", "")) if response.status_code == 400 else ""
        if action == "add" and self.create_contacts and ALREADY_IN_LIST in message.lower():
            # "Contact already in list and/or does not exist": just imported, they exist, so they are members.
            return {"success": set(), "failure": set(), "already": {e.lower() for e in emails}}
        self._check(response)
        contacts: dict[str, Any] = (response_json(response) or {}).get("contacts") or {}
        return {
            "success": {str(e).lower() for e in contacts.get("success") or []},
            "failure": {str(e).lower() for e in contacts.get("failure") or []},
            "already": set(),
        }

    def _check(self, response: requests.Response) -> None:
        if response.status_code == 429:
            reset = header_float(response, "x-sib-ratelimit-reset")
            raise RetryableError(
                self.http.reason(response), 429, reset if reset is not None else retry_after_header(response)
            )
        self.http.raise_for_status(response)
