"""Salesforce sObject Collections upsert on an external id field.

- ``PATCH /services/data/v{X}/composite/sobjects/{SObject}/{ExternalIdField}`` with
  ``{"allOrNone": false, "records": [...]}``: at most 200 records of one sObject type.
  200 with one result per record, in input order:
  ``{id, success, created, errors: [{statusCode, message, fields}]}``.
  With ``allOrNone: true`` one bad record rolls the whole request back.
- Bearer auth (``OAuth <token>`` also accepted, as Salesforce does); 401 ``INVALID_SESSION_ID``.
- ``PATCH /services/data/v{X}/sobjects/{SObject}/{ExternalIdField}/{value}``: one record
  upserted on an external id (how Attiva creates a sales Task exactly once, keyed by its
  message id): 201 ``{id, success, errors, created: true}``, 200 with ``created: false`` when
  it existed. A relationship given by external id, ``"Who": {"attributes": {"type": "Contact"},
  "Attiva_Customer_Id__c": "..."}``, is resolved to ``WhoId``; an unknown one is 400
  ``INVALID_FIELD`` "Foreign key external ID: ... not found ...", as Salesforce answers.
- ``DELETE /services/data/v{X}/sobjects/{SObject}/{ExternalIdField}/{value}``: deletes the record with
  that external id, 204; 404 ``NOT_FOUND`` when there is none. (Salesforce moves it to the Recycle Bin
  for 15 days; the sandbox keeps no recycle bin.)
- ``Sforce-Limit-Info: api-usage=n/m`` on every answer; past the rolling 24 h
  allocation: 403 ``REQUEST_LIMIT_EXCEEDED`` (not a 429).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import bearer_token
from sandbox.base import Refusal, VendorApi, iso_now
from sandbox.faults import REJECTION_MESSAGE
from sandbox.identifiers import is_email
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody

MAX_RECORDS = 200
_VERSION = re.compile(r"v\d+\.\d+")
_KEY_PREFIX = {"contact": "003", "lead": "00Q", "account": "001", "task": "00T"}
# Text field limits Salesforce enforces on the fields the sandbox is sent (STRING_TOO_LONG).
_MAX_LENGTH = {"subject": 255, "description": 32_000}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _errors(status: int, error_code: str, message: str, **extra: Any) -> JSONBody:
    return JSONBody([{"message": message, "errorCode": error_code, **extra}], status_code=status)


def _failed(status_code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {
        "id": None,
        "success": False,
        "created": False,
        "errors": [{"statusCode": status_code, "message": message, "fields": fields}],
    }


class Salesforce(VendorApi):
    name = "salesforce"

    def reset_state(self) -> None:
        # sObject -> external id field -> external id value -> record (with "Id")
        self.objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self.next_number = 1

    def state(self) -> dict[str, Any]:
        return {"objects": self.objects, "next_number": self.next_number}

    def load_state(self, data: dict[str, Any]) -> None:
        self.objects = data.get("objects", {})
        self.next_number = int(data.get("next_number", 1))

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/services/data/{version}/composite/sobjects/{sobject}/{external_field}",
                self.endpoint(self.upsert),
                methods=["PATCH"],
            ),
            Route(
                "/services/data/{version}/sobjects/{sobject}/{external_field}/{external_value}",
                self.endpoint(self.upsert_one),
                methods=["PATCH"],
            ),
            Route(
                "/services/data/{version}/sobjects/{sobject}/{external_field}/{external_value}",
                self.endpoint(self.delete_by_external_id),
                methods=["DELETE"],
            ),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        return bearer_token(request, schemes=("bearer", "oauth"))

    def auth_error(self, missing: bool) -> Response:
        return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def rate_limited(self, check: WindowCheck) -> Response:
        return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        if self.window.limit is None:
            return {}
        return {"Sforce-Limit-Info": f"api-usage={self.window.used()}/{self.window.limit}"}

    def server_error(self) -> Response:
        return _errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later.")

    def refuse(self, refusal: Refusal) -> Response:
        code = refusal.code if refusal.code and refusal.code.isupper() else "JSON_PARSER_ERROR"
        return _errors(refusal.status, code, refusal.message)

    # ---- endpoint ------------------------------------------------------------------------------

    def _new_id(self, sobject: str) -> str:
        prefix = _KEY_PREFIX.get(sobject.lower(), "a00")
        n, digits = self.next_number, []
        self.next_number += 1
        while n:
            n, r = divmod(n, 62)
            digits.append(_BASE62[r])
        return prefix + "".join(reversed(digits)).rjust(12, "0") + "AAA"

    async def upsert(self, request: Request) -> Response:
        """Upsert up to 200 records on an external id; one result per record, in input order."""
        params = request.path_params
        if not _VERSION.fullmatch(params["version"]):
            raise Refusal("The requested resource does not exist", status=404, code="NOT_FOUND")
        sobject, external_field = params["sobject"], params["external_field"]
        body = await self.json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise Refusal("records: a non-empty list of sObjects is required", code="INVALID_FIELD")
        if len(records) > MAX_RECORDS:
            raise Refusal(
                f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
                code="EXCEEDED_ID_LIMIT",
            )
        all_or_none = bool(body.get("allOrNone", False))
        table = self.objects.get(sobject, {}).get(external_field, {})
        field_lower = external_field.lower()

        planned: list[tuple[str, dict[str, Any]] | None] = []
        results: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for record in records:
            if not isinstance(record, dict):
                results.append(_failed("INVALID_FIELD", "each record must be an object", []))
                planned.append(None)
                continue
            kind = (record.get("attributes") or {}).get("type") if isinstance(record.get("attributes"), dict) else None
            if kind != sobject:
                results.append(
                    _failed("INVALID_TYPE", f"attributes.type must be {sobject} (one sObject type per request)", [])
                )
                planned.append(None)
                continue
            values = {k: v for k, v in record.items() if k != "attributes"}
            key_field = next((k for k in values if k.lower() == field_lower), None)
            key = values.get(key_field) if key_field else None
            if key is None or str(key) == "":
                results.append(_failed("MISSING_ARGUMENT", f"{external_field} not specified", [external_field]))
                planned.append(None)
                continue
            key = str(key)
            email_field = next((k for k in values if k.lower() == "email"), None)
            if email_field and values[email_field] not in (None, "") and not is_email(values[email_field]):
                results.append(
                    _failed(
                        "INVALID_EMAIL_ADDRESS",
                        f"{email_field}: invalid email address: {values[email_field]}",
                        [email_field],
                    )
                )
                planned.append(None)
                continue
            if self.faults.rejects(f"{sobject}/{external_field}/{key}"):
                results.append(_failed("FIELD_CUSTOM_VALIDATION_EXCEPTION", REJECTION_MESSAGE, []))
                planned.append(None)
                continue
            if key in seen:
                # Salesforce fails every record that repeats an external id within the request.
                dup = _failed("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {key}", [external_field])
                first = seen[key]
                if planned[first] is not None:
                    results[first] = dup
                    planned[first] = None
                results.append(dup)
                planned.append(None)
                continue
            seen[key] = len(results)
            results.append({})  # filled in below
            planned.append((key, values))

        if all_or_none and any(p is None for p in planned):
            rolled_back = [
                r
                if p is None
                else _failed(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    [],
                )
                for r, p in zip(results, planned, strict=True)
            ]
            return JSONBody(rolled_back)

        now = iso_now()
        if any(p is not None for p in planned):
            table = self.objects.setdefault(sobject, {}).setdefault(external_field, {})
        for i, plan in enumerate(planned):
            if plan is None:
                continue
            key, values = plan
            existing = table.get(key)
            created = existing is None
            if created:
                existing = {"Id": self._new_id(sobject), "CreatedDate": now}
                table[key] = existing
            existing.update(values)
            existing["LastModifiedDate"] = now
            results[i] = {"id": existing["Id"], "success": True, "created": created, "errors": []}
        return JSONBody(results)

    async def upsert_one(self, request: Request) -> Response:
        """Upsert one record on an external id (201 created, 200 updated); relationships by external id."""
        params = request.path_params
        if not _VERSION.fullmatch(params["version"]):
            raise Refusal("The requested resource does not exist", status=404, code="NOT_FOUND")
        sobject, external_field, key = params["sobject"], params["external_field"], params["external_value"]
        if not key:
            raise Refusal(f"{external_field} not specified", code="MISSING_ARGUMENT")
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("The request body must be a JSON object of field values", code="JSON_PARSER_ERROR")
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name == "attributes":
                continue
            if name.lower() == "id":
                raise Refusal("Id not allowed in an upsert by external id", code="INVALID_FIELD_FOR_INSERT_UPDATE")
            if isinstance(value, dict):  # a relationship given by the related record's external id
                name, value = self._resolve(name, value)
            limit = _MAX_LENGTH.get(name.lower())
            if limit is not None and isinstance(value, str) and len(value) > limit:
                return _errors(400, "STRING_TOO_LONG", f"{name}: data value too large: {value[:40]}... "
                                                       f"(max length={limit})", fields=[name])
            values[name] = value
        if self.faults.rejects(f"{sobject}/{external_field}/{key}"):
            return _errors(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", REJECTION_MESSAGE, fields=[])
        table = self.objects.setdefault(sobject, {}).setdefault(external_field, {})
        now = iso_now()
        existing = table.get(key)
        created = existing is None
        if existing is None:
            existing = table[key] = {"Id": self._new_id(sobject), "CreatedDate": now, external_field: key}
        existing.update(values)
        existing["LastModifiedDate"] = now
        return JSONBody({"id": existing["Id"], "success": True, "errors": [], "created": created},
                        status_code=201 if created else 200)

    async def delete_by_external_id(self, request: Request) -> Response:
        """Delete the record with this external id; 204, or 404 NOT_FOUND."""
        params = request.path_params
        if not _VERSION.fullmatch(params["version"]):
            raise Refusal("The requested resource does not exist", status=404, code="NOT_FOUND")
        table = self.objects.get(params["sobject"], {}).get(params["external_field"], {})
        if table.pop(params["external_value"], None) is None:
            raise Refusal("The requested resource does not exist", status=404, code="NOT_FOUND")
        return Response(status_code=204)

    def _resolve(self, relationship: str, reference: dict[str, Any]) -> tuple[str, str]:
        """``Who: {attributes: {type: Contact}, Ext__c: v}`` -> ``("WhoId", <the Contact's Id>)``."""
        attributes = reference.get("attributes") if isinstance(reference.get("attributes"), dict) else {}
        target = attributes.get("type") or relationship
        keys = [k for k in reference if k != "attributes"]
        if len(keys) != 1:
            raise Refusal(f"{relationship}: name exactly one external id field of {target}", code="INVALID_FIELD")
        field, value = keys[0], str(reference[keys[0]])
        record = self.objects.get(target, {}).get(field, {}).get(value)
        if record is None:
            raise Refusal(f"Foreign key external ID: {value} not found for field {field} in entity {target}",
                          code="INVALID_FIELD")
        return f"{relationship}Id", record["Id"]
