"""SendGrid Marketing contacts: asynchronous upsert into a list, polled to completion.

`PUT /v3/marketing/contacts` (up to 30,000 contacts or 6 MB) answers 202 with a
`job_id`; `GET /v3/marketing/contacts/imports/{job_id}` reports `pending`, then
`completed`, `errored` (some rows failed) or `failed`. One `send` is that whole
exchange: submit, then poll with growing pauses. Row failures are read from the
job's error report (`results.errors_url`, a CSV) and mapped back by email.

Removal takes contacts out of the list (never deletes them): their ids are looked
up by email (`POST /v3/marketing/contacts/search/emails`), then
`DELETE /v3/marketing/lists/{id}/contacts?contact_ids=...`.

Erasure (`erase`) deletes the contacts themselves: ids looked up by email as above, then
`DELETE /v3/marketing/contacts?ids=...` (202 `{job_id}`, processed asynchronously). A row is confirmed
only once the search no longer finds the address, so a deletion still in SendGrid's queue is checked
again on the next attempt.

Rate limits: 429 with `X-RateLimit-Reset` (epoch seconds).
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import requests

from activations.destinations.base import (
    BatchPart,
    BatchRefused,
    Capabilities,
    Operation,
    RetryableError,
    RowResult,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpDestination,
    dumps,
    field_rows,
    header_float,
    json_value,
    require_columns,
    response_json,
    retry_after_header,
)

MAX_CONTACTS = 30_000
MAX_BODY_BYTES = 6 * 1024 * 1024
# Contact fields SendGrid stores at top level; every other mapped field is a custom field.
RESERVED_FIELDS = frozenset(
    {
        "address_line_1",
        "address_line_2",
        "alternate_emails",
        "city",
        "country",
        "first_name",
        "last_name",
        "postal_code",
        "state_province_region",
        "phone_number",
        "whatsapp",
        "line",
        "facebook",
        "unique_name",
        "external_id",
        "anonymous_id",
    }
)
MAX_SEARCH_EMAILS = 100
FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 5.0


class SendGridDestination(HttpDestination):
    """SendGrid Marketing contacts in one list."""

    type = "sendgrid"
    options = {
        "list_id": Option(str, required=True, help="the marketing list the contacts belong to"),
        "poll_timeout": Option(float, default=300.0, help="seconds to wait for an import job to finish"),
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.list_id = config.require("list_id")
        self.poll_timeout = float(config.get("poll_timeout"))

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        return Capabilities(
            type=cls.type,
            batch_size=MAX_CONTACTS,
            requests_per_window=None,  # per-endpoint limits, signalled with X-RateLimit-* headers
            window_seconds=None,
            max_concurrency=4,
            modes=frozenset({"upsert", "mirror", "full_resync"}),
            identifiers=("email",),
            hashing=None,
            idempotent_writes=True,
            required_identifiers=("email",),
            remove_batch_size=MAX_SEARCH_EMAILS,  # removal looks ids up 100 emails at a time
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Upsert contacts into the list and wait for the import, or take contacts out of the list."""
        if batch.height == 0:
            return []
        require_columns(batch, ["email"], self.type)
        emails = [str(e) for e in batch["email"].to_list()]
        if operation == "remove":
            return self._remove(emails)
        return self._upsert(batch, emails)

    # -- upsert ---------------------------------------------------------------------------------

    def _upsert(self, batch: pl.DataFrame, emails: list[str]) -> list[RowResult]:
        fields = self.field_columns(batch)
        contacts: dict[str, dict[str, Any]] = {}
        for email, row in zip(emails, field_rows(batch, fields), strict=True):
            contact: dict[str, Any] = {"email": email}
            custom: dict[str, Any] = {}
            for name in fields:
                value = row[name]
                if value is None:
                    continue
                (contact if name in RESERVED_FIELDS else custom)[name] = json_value(value)
            if custom:
                contact["custom_fields"] = custom
            contacts.setdefault(email.lower(), contact)
        body = dumps({"list_ids": [self.list_id], "contacts": list(contacts.values())})
        if len(body) > MAX_BODY_BYTES:
            raise BatchRefused(f"sendgrid: request of {len(body)} bytes is over the 6 MB limit", 413)
        rows_of: dict[str, list[int]] = {email: [] for email in contacts}
        for position, email in enumerate(emails):
            rows_of[email.lower()].append(position)
        contact_rows = [rows_of[email] for email in contacts]  # contacts[i] -> the batch rows it stands for
        response = self.http.request(
            "PUT", "/v3/marketing/contacts", data=body, headers={"Content-Type": "application/json"}
        )
        self._check(response, contact_rows=contact_rows)
        job_id = (response_json(response) or {}).get("job_id")
        if not job_id:
            raise RetryableError(self.http.reason(response, "no job_id in the answer"), response.status_code)
        job = self._wait(str(job_id))
        status = job.get("status")
        errors: dict[int, str] = {}
        if status in ("errored", "failed") or _errored_count(job):
            for index, reason in self._contact_errors(job, list(contacts)).items():
                for row in contact_rows[index] if index < len(contact_rows) else []:
                    errors[row] = reason
        if status == "failed" and not errors:
            raise BatchRefused(f"sendgrid: import job {job_id} failed", 200)
        applied = RowResult(True, 200) if status != "failed" else RowResult(False, 200, "sendgrid: import job failed")
        return [RowResult(False, 200, errors[i]) if i in errors else applied for i in range(len(emails))]

    def _wait(self, job_id: str) -> dict[str, Any]:
        """Poll the import job until it leaves `pending`, pausing longer each time."""
        deadline = time.monotonic() + self.poll_timeout
        pause = FIRST_POLL_SECONDS
        while True:
            response = self.http.request("GET", f"/v3/marketing/contacts/imports/{job_id}")
            if response.status_code == 429:
                wait = self._reset_seconds(response) or pause
            else:
                self._check(response)
                job = response_json(response) or {}
                if job.get("status") not in (None, "pending"):
                    return job
                wait = pause
                pause = min(pause * 2, MAX_POLL_SECONDS)
            if time.monotonic() + wait > deadline:
                # Upserts are idempotent: the engine may resubmit the batch.
                raise RetryableError(f"sendgrid: import job {job_id} still pending after {self.poll_timeout:.0f}s")
            time.sleep(wait)

    def _contact_errors(self, job: dict[str, Any], sent: list[str]) -> dict[int, str]:
        """Errored contacts of a job by their index in the request (`sent` are their lower-cased emails).

        SendGrid lists them in a CSV at `results.errors_url`; a row names its `index`
        in the request when it can, else its email.
        """
        url = (job.get("results") or {}).get("errors_url")
        if not url:
            return {}
        index_of = {email: i for i, email in enumerate(sent)}
        errors: dict[int, str] = {}
        for row in self._error_report(str(url)):
            reason = self._reason(row.get("error") or row.get("reason") or row.get("message"))
            index = str(row.get("index") or "").strip()
            if index.isdigit() and int(index) < len(sent):
                errors[int(index)] = reason
            elif (email := str(row.get("email") or "").strip().lower()) in index_of:
                errors[index_of[email]] = reason
        return errors

    def _error_report(self, url: str) -> list[dict[str, str]]:
        target = url if urlsplit(url).netloc else f"{self.http.base_url}{url}"
        # The report link is pre-signed: our credentials only ever go to our own API host.
        if urlsplit(target).netloc == urlsplit(self.http.base_url).netloc:
            response = self.http.request("GET", "", url=target)
        else:
            try:
                response = requests.get(target, timeout=self.http.timeout)
            except requests.RequestException as exc:
                raise RetryableError(f"sendgrid: error report unreachable ({type(exc).__name__})") from None
        self._check(response)
        reader = csv.DictReader(io.StringIO(response.text))
        return [{str(k).strip().lower(): v for k, v in row.items() if k is not None} for row in reader]

    # -- remove ---------------------------------------------------------------------------------

    def _contact_ids(self, emails: list[str]) -> dict[str, str]:
        """Contact id by lower-cased email, for the addresses SendGrid holds a contact for."""
        unique = list(dict.fromkeys(e.lower() for e in emails))
        ids: dict[str, str] = {}
        for start in range(0, len(unique), MAX_SEARCH_EMAILS):
            chunk = unique[start : start + MAX_SEARCH_EMAILS]
            response = self.http.request("POST", "/v3/marketing/contacts/search/emails", json_body={"emails": chunk})
            if response.status_code == 404:
                continue  # none of them is a contact
            self._check(response)
            found = (response_json(response) or {}).get("result") or {}
            for email, entry in found.items():
                contact = entry.get("contact") if isinstance(entry, dict) else None
                if isinstance(contact, dict) and contact.get("id"):
                    ids[str(email).lower()] = str(contact["id"])
        return ids

    def _remove(self, emails: list[str]) -> list[RowResult]:
        ids = self._contact_ids(emails)
        contact_ids = list(dict.fromkeys(ids.values()))
        for start in range(0, len(contact_ids), MAX_SEARCH_EMAILS):
            response = self.http.request(
                "DELETE",
                f"/v3/marketing/lists/{self.list_id}/contacts",
                params={"contact_ids": ",".join(contact_ids[start : start + MAX_SEARCH_EMAILS])},
            )
            # 202 {job_id}: SendGrid offers no status for removal jobs; the 202 is the confirmation.
            self._check(response)
        return [
            RowResult(True, 202, None, ids[e.lower()])
            if e.lower() in ids
            else RowResult(True, 200, "sendgrid: not a contact, so not in the list")
            for e in emails
        ]

    # -- erase ----------------------------------------------------------------------------------

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Delete the contacts (every list, the contact itself); confirmed once SendGrid no longer finds them."""
        require_columns(rows, ["email"], self.type)
        emails = [str(e) if e else "" for e in rows["email"].to_list()]
        ids = self._contact_ids([e for e in emails if e])
        contact_ids = list(dict.fromkeys(ids.values()))
        for start in range(0, len(contact_ids), MAX_SEARCH_EMAILS):
            response = self.http.request(
                "DELETE", "/v3/marketing/contacts", params={"ids": ",".join(contact_ids[start : start + MAX_SEARCH_EMAILS])}
            )
            self._check(response)
        remaining = self._contact_ids([e for e in emails if e]) if contact_ids else {}
        results = []
        for email in emails:
            if not email:
                results.append(RowResult(False, None, "sendgrid: no email to find the contact by"))
            elif email.lower() in remaining:
                results.append(RowResult(False, 202, "sendgrid: deletion accepted, contact still listed; checked again"))
            else:
                results.append(RowResult(True, 202 if email.lower() in ids else 404))
        return results

    # -- errors ---------------------------------------------------------------------------------

    def _check(self, response: requests.Response, contact_rows: list[list[int]] | None = None) -> None:
        """Raise for a refused request; `contact_rows` maps `contacts[i]` to the batch rows it came from."""
        if response.status_code == 429:
            raise RetryableError(self.http.reason(response), 429, self._reset_seconds(response))
        if response.status_code == 400 and contact_rows is not None:
            rejected = {
                row: reason
                for index, reason in self._rejected_contacts(response).items()
                if index < len(contact_rows)
                for row in contact_rows[index]
            }
            self.http.raise_for_status(response, rejected_rows=rejected)
        self.http.raise_for_status(response)

    def _reset_seconds(self, response: requests.Response) -> float | None:
        reset = header_float(response, "X-RateLimit-Reset")
        if reset is not None:
            return max(0.0, reset - time.time())
        return retry_after_header(response)

    def _rejected_contacts(self, response: requests.Response) -> dict[int, str]:
        """`errors[].field` like `contacts[3].email` names the refused contacts of a 400."""
        rejected: dict[int, str] = {}
        for error in (response_json(response) or {}).get("errors") or []:
            field = str(error.get("field") or "") if isinstance(error, dict) else ""
            if field.startswith("contacts[") and "]" in field:
                index = field[len("contacts[") : field.index("]")]
                if index.isdigit():
                    rejected[int(index)] = self._reason(error.get("message"))
        return rejected

    def _reason(self, message: Any) -> str:
        return self.http.redact(f"sendgrid: {message or 'rejected'}")[:300]


def _errored_count(job: dict[str, Any]) -> int:
    count = (job.get("results") or {}).get("errored_count")
    return count if isinstance(count, int) else 0
