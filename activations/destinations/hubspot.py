"""HubSpot CRM contacts: batch upsert by email, and static-list membership for mirror syncs.

Upsert: `POST /crm/v3/objects/contacts/batch/upsert`, 100 inputs, `idProperty: email`;
a 200/207 body lists `results` (record ids) and `errors[].context.ids` (the
emails that failed), mapped back to rows.

List: a sync names its list (`list:` in its declaration; one list per sync). The
client finds it by name (`GET /crm/v3/lists/object-type-id/0-1/name/{name}`) or
creates it MANUAL (`POST /crm/v3/lists`), and keeps its numeric id. Upserted
contacts are then added to it (`PUT /crm/v3/lists/{id}/memberships/add-and-remove`)
and removals take them out by record id, so removal needs the id the upsert
returned (`_destination_id`). When the membership step fails after the upsert
succeeded, only that step is retried (`RetryableError.resume`): the contacts are
not written again.

Erasure (`erase`): `POST /crm/v3/objects/contacts/gdpr-delete` `{"objectId": email, "idProperty": "email"}`
(or the record id alone), one contact per request, 204 with no body: HubSpot's permanent delete, which
also blocklists the address for imports and the UI (not for the API: Attiva's own plan keeps it out).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import polars as pl
import requests

from activations.destinations.base import (
    DESTINATION_ID_COLUMN,
    BatchPart,
    BatchRefused,
    Capabilities,
    DestinationConfigError,
    Operation,
    QuotaExhausted,
    RetryableError,
    RowResult,
)
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import (
    HttpDestination,
    RollingWindow,
    header_float,
    present_fields,
    require_columns,
    response_json,
    retry_after_header,
)

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
GDPR_DELETE_PATH = "/crm/v3/objects/contacts/gdpr-delete"
LISTS_PATH = "/crm/v3/lists"
CONTACTS_OBJECT_TYPE = "0-1"
WINDOW_SECONDS = 10.0
# Requests per 10 s rolling window: OAuth apps 100, private apps on Professional/Enterprise 190.
PLAN_LIMITS = {"oauth_app": 100, "private_app": 190}


class HubSpotDestination(HttpDestination):
    """HubSpot contacts, and optionally their membership of one static list."""

    type = "hubspot"
    options = {
        "list": Option(str, per_sync=True, help="name of the sync's MANUAL list (found or created); needed for mirror"),
        "plan": Option(str, default="oauth_app", choices=tuple(PLAN_LIMITS), help="sets the 10 s request limit"),
    }
    retired_options = {
        "list_id": "HubSpot lists are named per sync now: set `list: <name>` in the sync's declaration "
        "(Attiva finds or creates that MANUAL list)",
    }

    def __init__(self, config: DestinationConfig) -> None:
        super().__init__(config)
        self.list_name: str | None = config.get("list")
        self._list_id: str | None = None
        self._list_lock = threading.Lock()
        self.window = RollingWindow(WINDOW_SECONDS)

    @classmethod
    def platform_capabilities(cls, config: DestinationConfig) -> Capabilities:
        per_window = PLAN_LIMITS[config.get("plan", "oauth_app")]
        with_list = bool(config.get("list"))
        return Capabilities(
            type=cls.type,
            batch_size=100,
            # With a list every upsert is two requests (upsert, then membership).
            requests_per_window=per_window // 2 if with_list else per_window,
            window_seconds=WINDOW_SECONDS,
            max_concurrency=8,
            modes=frozenset({"upsert", "full_resync", "mirror"} if with_list else {"upsert", "full_resync"}),
            identifiers=("email",),
            hashing=None,
            idempotent_writes=True,
            required_identifiers=("email",),
        )

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """Upsert contacts (then add them to the list), or remove them from the list."""
        if batch.height == 0:
            return []
        if operation == "remove":
            return self._remove(batch)
        return self._upsert(batch)

    # -- upsert ---------------------------------------------------------------------------------

    def _upsert(self, batch: pl.DataFrame) -> list[RowResult]:
        require_columns(batch, ["email"], self.type)
        fields = self.field_columns(batch)
        rows = batch.select(["email", *fields]).to_dicts()
        emails = [str(row["email"]) for row in rows]
        # HubSpot refuses a batch that names one id twice: send each email once, answer every row.
        inputs: dict[str, dict[str, Any]] = {}
        for email, row in zip(emails, rows, strict=True):
            properties = present_fields(row, fields)
            properties["email"] = email  # echoed back in results[].properties: how results find their rows
            inputs.setdefault(email.lower(), {"id": email, "idProperty": "email", "properties": properties})

        response = self._call("POST", UPSERT_PATH, {"inputs": list(inputs.values())})
        body = response_json(response) or {}
        outcome: dict[str, RowResult] = {}
        for error in body.get("errors") or []:
            reason = self.http.reason(response, f"{error.get('category', 'ERROR')}: {error.get('message', '')}")
            for failed_id in (error.get("context") or {}).get("ids") or []:
                outcome[str(failed_id).lower()] = RowResult(False, _error_status(error, response), reason)
        results = body.get("results") or []
        unnamed: list[dict[str, Any]] = []
        for result in results:
            email = ((result.get("properties") or {}).get("email") or "").lower()
            if email in inputs:
                outcome[email] = RowResult(True, response.status_code, None, str(result.get("id")))
            else:
                unnamed.append(result)
        # A result without the email property: results come in input order, skipping failed inputs.
        pending = [email for email in inputs if email not in outcome]
        if unnamed and len(unnamed) == len(pending):
            for email, result in zip(pending, unnamed, strict=True):
                outcome[email] = RowResult(True, response.status_code, None, str(result.get("id")))

        missing = RowResult(False, response.status_code, "hubspot: the response did not confirm this row")
        if self.list_name:
            return self._join_list(outcome, emails, missing)
        return [outcome.get(email.lower(), missing) for email in emails]

    def _join_list(self, outcome: dict[str, RowResult], emails: list[str], missing: RowResult) -> list[RowResult]:
        """Add the upserted contacts to the list; if that fails, hand the engine this step alone to retry."""
        try:
            self._add_to_list(outcome)
        except RetryableError as exc:
            exc.resume = lambda: self._join_list(outcome, emails, missing)
            raise
        return [outcome.get(email.lower(), missing) for email in emails]

    def _add_to_list(self, outcome: dict[str, RowResult]) -> None:
        ids = {email: result.destination_id for email, result in outcome.items() if result.ok and result.destination_id}
        if not ids:
            return
        body = self._membership(list(dict.fromkeys(ids.values())), [])
        missing = {str(record_id) for record_id in body.get("recordIdsMissing") or []}
        for email, record_id in ids.items():
            if record_id in missing:
                outcome[email] = RowResult(False, 200, "hubspot: list membership: record missing", record_id)

    # -- remove ---------------------------------------------------------------------------------

    def _remove(self, batch: pl.DataFrame) -> list[RowResult]:
        if not self.list_name:
            raise self.config.error("removal needs the sync's list (contacts leave a list, they are never deleted)",
                                    "list")
        require_columns(batch, [DESTINATION_ID_COLUMN], self.type)
        record_ids = [None if value is None else str(value) for value in batch[DESTINATION_ID_COLUMN].to_list()]
        to_remove = list(dict.fromkeys(record_id for record_id in record_ids if record_id))
        if to_remove:
            body = self._membership([], to_remove)
        else:
            body = {}
        missing = {str(record_id) for record_id in body.get("recordIdsMissing") or []}
        results = []
        for record_id in record_ids:
            if not record_id:
                results.append(RowResult(False, None, "hubspot: no record id for this row (needed to leave the list)"))
            elif record_id in missing:
                # The record no longer exists: it is not in the list either, which is what removal wants.
                results.append(RowResult(True, 200, "hubspot: record no longer exists", record_id))
            else:
                results.append(RowResult(True, 200, None, record_id))
        return results

    # -- erase ----------------------------------------------------------------------------------

    def erase(self, rows: pl.DataFrame) -> list[RowResult]:
        """Permanently delete each contact with HubSpot's GDPR delete: by email, else by record id."""
        results = []
        for row in rows.iter_rows(named=True):
            email, record_id = row.get("email"), row.get(DESTINATION_ID_COLUMN)
            if email:
                body = {"objectId": str(email), "idProperty": "email"}
            elif record_id:
                body = {"objectId": str(record_id)}
            else:
                results.append(RowResult(False, None, "hubspot: neither an email nor a record id to delete by"))
                continue
            self.window.record()
            response = self.http.request("POST", GDPR_DELETE_PATH, json_body=body)
            if response.status_code == 429:
                self._raise_rate_limited(response)
            if response.status_code == 404:  # no such record id: HubSpot holds nobody under it
                results.append(RowResult(True, 404, "hubspot: no such contact"))
                continue
            self.http.raise_for_status(response)
            results.append(RowResult(True, response.status_code))
        return results

    # -- HTTP -----------------------------------------------------------------------------------

    def _membership(self, add: list[str], remove: list[str]) -> dict[str, Any]:
        path = f"{LISTS_PATH}/{self.list_id()}/memberships/add-and-remove"
        response = self._call("PUT", path, {"recordIdsToAdd": add, "recordIdsToRemove": remove})
        return response_json(response) or {}

    # -- the sync's list ------------------------------------------------------------------------

    def list_id(self) -> str:
        """The id of the sync's list: found by name, else created MANUAL; asked once per client."""
        with self._list_lock:
            if self._list_id is None:
                self._list_id = self._find_list() or self._create_list()
            return self._list_id

    def _find_list(self) -> str | None:
        path = f"{LISTS_PATH}/object-type-id/{CONTACTS_OBJECT_TYPE}/name/{quote(str(self.list_name), safe='')}"
        response = self._call("GET", path, None, missing_ok=True)
        if response.status_code == 404:
            return None
        found = (response_json(response) or {}).get("list") or {}
        if found.get("processingType") != "MANUAL":
            raise self.config.error(
                f"HubSpot list {self.list_name!r} is {found.get('processingType')}: Attiva keeps its members itself, "
                "so it needs a MANUAL list; rename that list or name another one", "list")
        return _list_id_of(found, self.config)

    def _create_list(self) -> str:
        body = {"name": self.list_name, "objectTypeId": CONTACTS_OBJECT_TYPE, "processingType": "MANUAL"}
        try:
            response = self._call("POST", LISTS_PATH, body)
        except BatchRefused:
            # Another run created it since we looked (names are unique): use that one.
            if (found := self._find_list()) is not None:
                return found
            raise
        return _list_id_of((response_json(response) or {}).get("list") or {}, self.config)

    def _call(self, method: str, path: str, body: dict[str, Any] | None, missing_ok: bool = False) -> requests.Response:
        self.window.record()
        response = self.http.request(method, path, json_body=body)
        if response.status_code == 429:
            self._raise_rate_limited(response)
        if missing_ok and response.status_code == 404:
            return response
        self.http.raise_for_status(response)
        return response

    def _raise_rate_limited(self, response: requests.Response) -> None:
        body = response_json(response) or {}
        policy = body.get("policyName") if isinstance(body, dict) else None
        reason = self.http.reason(response, f"rate limited ({policy or 'unknown policy'})")
        if policy == "DAILY":
            raise QuotaExhausted(reason, 429)
        # The platform's own signal, exactly; without one, the time until our requests in the window
        # drop under its limit (X-HubSpot-RateLimit-Max), else until our oldest one leaves it.
        retry_after = retry_after_header(response)
        if retry_after is None:
            retry_after = self.window.rest_of_window(header_float(response, "X-HubSpot-RateLimit-Max"))
        raise RetryableError(reason, 429, retry_after)


def _list_id_of(found: dict[str, Any], config: DestinationConfig) -> str:
    list_id = found.get("listId")
    if list_id in (None, ""):
        raise DestinationConfigError(f"hubspot: the list answer carries no listId (list {config.get('list')!r})")
    return str(list_id)


def _error_status(error: dict[str, Any], response: requests.Response) -> int:
    status = error.get("status")
    return status if isinstance(status, int) else response.status_code
