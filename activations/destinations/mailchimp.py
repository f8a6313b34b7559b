"""Mailchimp Marketing: batch member upsert on a list, static segment membership for mirror syncs.

`POST /3.0/lists/{list_id}` with up to 500 members and `update_existing: true`
answers 200 even when rows are rejected: `errors[].email_address` names them.
With `segment_id`, upserted members are then added to the static segment
(`POST /3.0/lists/{list_id}/segments/{segment_id}`, `members_to_add`), and
removal takes them out of it (`members_to_remove`); members are never deleted
or unsubscribed by a sync. Auth is HTTP Basic with the API key as password;
Mailchimp allows 10 simultaneous connections.

Erasure (`erase`): `POST /3.0/lists/{list_id}/members/{md5(lower email)}/actions/delete-permanent`, 204:
the member and their history are gone, and Mailchimp refuses to re-import the address (400 "Forgotten
Email Not Subscribed"). 404: not a member, nothing held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import polars as pl
import requests

from activations.destinations.base import BatchPart, Capabilities, Operation, RetryableError, RowResult, Secret
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpDestination,
    field_rows,
    present_fields,
    require_columns,
    response_json,
    retry_after_header,
)

MAX_MEMBERS = 500
# Segment errors that mean the membership is already what was asked.
ALREADY_ADDED = ("already",)
ALREADY_REMOVED = ("already", "not a member", "not in the segment", "does not exist")


class MailchimpDestination(HttpDestination):
    """Members of one Mailchimp audience, and optionally of one static segment."""

    type = "mailchimp"
    options = {
        "list_id": Option(str, required=True, help="the audience (list) id"),
        "segment_id": Option(str, help="static segment (tag) the synced members belong to; needed for mirror syncs"),
        "status_if_new": Option(
            str,
            default="subscribed",
            choices=("subscribed", "pending", "transactional", "unsubscribed"),
            help="status of members Mailchimp does not know yet",
        ),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.list_id = config.require("list_id")
        self.segment_id: str | None = config.get("segment_id")
        self.status_if_new = config.get("status_if_new")

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        with_segment = bool(config.get("segment_id"))
        return Capabilities(
            type=cls.type,
            batch_size=MAX_MEMBERS,
            requests_per_window=None,  # Mailchimp limits connections, not a request pace
            window_seconds=None,
            max_concurrency=10,
            modes=frozenset(
                {"upsert", "update", "full_resync", "mirror"} if with_segment else {"upsert", "update", "full_resync"}
            ),
            identifiers=("email",),
            hashing=None,
            idempotent_writes=True,
            required_identifiers=("email",),
        )

    def basic_auth(self, token: Secret) -> tuple[str, str] | None:
        return ("attiva", token.reveal())

    def auth_headers(self, token: Secret) -> dict[str, str]:
        return {}

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Upsert members (then add them to the segment), or remove them from the segment."""
        if batch.height == 0:
            return []
        require_columns(batch, ["email"], self.type)
        emails = [str(e) for e in batch["email"].to_list()]
        if operation == "remove":
            if not self.segment_id:
                raise self.config.error(
                    "removal needs segment_id (members leave a segment, never the list)", "segment_id"
                )
            errors = self._segment(remove=emails)
            return [
                RowResult(True, 200, None, None)
                if _already(errors.get(e.lower()), ALREADY_REMOVED)
                else _failed(errors[e.lower()])
                for e in emails
            ]
        return self._upsert(batch, emails)

    def _upsert(self, batch: pl.DataFrame, emails: list[str]) -> list[RowResult]:
        fields = self.field_columns(batch)
        members: dict[str, dict[str, Any]] = {}
        for email, row in zip(emails, field_rows(batch, fields), strict=True):
            member: dict[str, Any] = {"email_address": email, "status_if_new": self.status_if_new}
            merge_fields = present_fields(row, fields)
            if merge_fields:
                member["merge_fields"] = merge_fields
            members.setdefault(email.lower(), member)  # one entry per address: Mailchimp refuses duplicates
        response = self._call(
            "POST", f"/3.0/lists/{self.list_id}", {"members": list(members.values()), "update_existing": True}
        )
        body = response_json(response) or {}
        outcome: dict[str, RowResult] = {}
        for member in [*(body.get("new_members") or []), *(body.get("updated_members") or [])]:
            address = str(member.get("email_address", "")).lower()
            outcome[address] = RowResult(True, response.status_code, None, member.get("id"))
        for error in body.get("errors") or []:
            address = str(error.get("email_address", "")).lower()
            text = f"mailchimp: {error.get('error_code') or 'ERROR'}: {error.get('error', '')}"
            outcome[address] = RowResult(False, response.status_code, self.http.redact(text)[:300])
        if self.segment_id:
            confirmed = [address for address, result in outcome.items() if result.ok]
            if confirmed:
                for address, error in self._segment(add=confirmed).items():
                    if address in outcome and not _already(error, ALREADY_ADDED):
                        outcome[address] = _failed(error, outcome[address].destination_id)
        unconfirmed = RowResult(False, response.status_code, "mailchimp: the response did not confirm this member")
        return [outcome.get(email.lower(), unconfirmed) for email in emails]

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Permanently delete each member from the audience (not archive, not unsubscribe)."""
        require_columns(rows, ["email"], self.type)
        results = []
        for email in rows["email"].to_list():
            if not email:
                results.append(RowResult(False, None, "mailchimp: no email to find the member by"))
                continue
            member = hashlib.md5(str(email).strip().lower().encode()).hexdigest()
            path = f"/3.0/lists/{self.list_id}/members/{member}/actions/delete-permanent"
            response = self.http.request("POST", path)
            if response.status_code == 404:
                results.append(RowResult(True, 404, "mailchimp: not a member"))
                continue
            if response.status_code == 429:
                raise RetryableError(self.http.reason(response), 429, retry_after_header(response) or 1.0)
            self.http.raise_for_status(response)
            results.append(RowResult(True, response.status_code))
        return results

    def _segment(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict[str, str]:
        """Change static segment membership; the errors by lower-cased address."""
        body: dict[str, Any] = {"members_to_add": list(add), "members_to_remove": list(remove)}
        response = self._call("POST", f"/3.0/lists/{self.list_id}/segments/{self.segment_id}", body)
        answer = response_json(response) or {}
        errors: dict[str, str] = {}
        for error in answer.get("errors") or []:
            addresses = error.get("email_addresses") or ([error["email_address"]] if error.get("email_address") else [])
            for address in addresses:
                errors[str(address).lower()] = self.http.redact(f"mailchimp: segment: {error.get('error', '')}")[:300]
        return errors

    def _call(self, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        response = self.http.request(method, path, json_body=body)
        if response.status_code == 429:
            # Too many simultaneous connections (or requests): short-lived, no reset signal given.
            raise RetryableError(self.http.reason(response), 429, retry_after_header(response) or 1.0)
        self.http.raise_for_status(response)
        return response


def _already(error: str | None, markers: tuple[str, ...]) -> bool:
    return error is None or any(marker in error.lower() for marker in markers)


def _failed(reason: str, destination_id: str | None = None) -> RowResult:
    return RowResult(False, 200, reason, destination_id)
