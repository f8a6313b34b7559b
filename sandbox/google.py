"""Google Data Manager API: audience members ingested into and removed from user lists.

- ``POST /v1/audienceMembers:ingest`` and ``POST /v1/audienceMembers:remove`` with
  ``{destinations, audienceMembers, consent, encoding, validateOnly}`` (camelCase or
  snake_case, enums by name or by number, as proto3 JSON allows: Google's own client sends
  ``"accountType": 1``); at most 10,000 members, 10 identifiers each, 10 destinations.
  200 ``{"requestId": ...}``.
- Fast-fail, as Google documents: one invalid member fails the whole request with 400
  ``INVALID_ARGUMENT`` whose ``details`` carry a ``google.rpc.BadRequest`` listing every
  violation, each ``field`` naming the member index (``audience_members.audience_members[i]...``)
  and a Data Manager ``reason`` (INVALID_HEX_ENCODING, INVALID_SHA256_FORMAT, ...).
- Bearer auth (401 UNAUTHENTICATED); 300 requests/min, then 429 RESOURCE_EXHAUSTED.
- ``GET /v1/requestStatus:retrieve?requestId=`` reports each destination's outcome of a request:
  ``requestStatus`` and, for an ingest, ``audienceMembersIngestionStatus.userDataIngestionStatus``
  with ``recordCount``, ``userIdentifierCount`` and ``uploadMatchRateRange`` (how many of the
  uploaded records Google matched to its users, as a range such as ``MATCH_RATE_RANGE_51_TO_60``);
  a removal reports ``audienceMembersRemovalStatus.userDataRemovalStatus``. Here every request is
  done at once, and a record "matches" by a hash of its identifiers at a rate near MATCH_SHARE,
  so the same upload always reports the same range. The last MAX_STATUSES requests are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import time
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.audiences import MemberSet
from sandbox.auth import bearer_token
from sandbox.base import Refusal, VendorApi
from sandbox.faults import REJECTION_MESSAGE
from sandbox.identifiers import is_hex
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody

MAX_MEMBERS = 10_000
MAX_IDENTIFIERS = 10
MAX_DESTINATIONS = 10
# The proto enums by number (proto3 JSON takes a name or its number; UNSPECIFIED, 0, is refused).
ACCOUNT_TYPE_NUMBERS = {
    1: "GOOGLE_ADS",
    2: "DISPLAY_VIDEO_PARTNER",
    3: "DISPLAY_VIDEO_ADVERTISER",
    4: "DATA_PARTNER",
    5: "GOOGLE_ANALYTICS_PROPERTY",
    6: "GOOGLE_AD_MANAGER_AUDIENCE_LINK",
    7: "FLOODLIGHT_CONFIG",
    8: "GOOGLE_AD_MANAGER",
}
ACCOUNT_TYPES = set(ACCOUNT_TYPE_NUMBERS.values())
CONSENT_NUMBERS = {0: "CONSENT_STATUS_UNSPECIFIED", 1: "CONSENT_GRANTED", 2: "CONSENT_DENIED"}
CONSENT_VALUES = set(CONSENT_NUMBERS.values())
ENCODING_NUMBERS = {0: "ENCODING_UNSPECIFIED", 1: "HEX", 2: "BASE64"}
DOMAIN = "datamanager.googleapis.com"
MATCH_SHARE = 0.62  # of uploaded records that match a Google user, in the sandbox
MAX_STATUSES = 10_000  # request statuses kept for requestStatus:retrieve


def status_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONBody:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONBody({"error": error}, status_code=code)


def invalid_argument(violations: list[dict[str, str]], reason: str = "INVALID_ARGUMENT") -> JSONBody:
    return status_error(
        400,
        "INVALID_ARGUMENT",
        "There was a problem with the request.",
        [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": DOMAIN},
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations},
        ],
    )


def _get(obj: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    if camel in obj:
        return obj[camel]
    return obj.get(snake, default)


def enum_name(value: Any, names: dict[int, str]) -> Any:
    """An enum as proto3 JSON sends it, by name or by number, as its name; anything else unchanged."""
    if isinstance(value, int) and not isinstance(value, bool):
        return names.get(value, value)
    return value


def match_rate_range(matched: int, records: int) -> str:
    """The Data Manager API's bucket for a match rate: under 20 %, then 20-30, 31-40 ... 91-100."""
    if not records:
        return "MATCH_RATE_RANGE_UNKNOWN"
    percent = 100 * matched / records
    if percent < 20:
        return "MATCH_RATE_RANGE_LESS_THAN_20"
    if percent <= 30:
        return "MATCH_RATE_RANGE_20_TO_30"
    upper = min(100, math.ceil(percent / 10) * 10)  # 30 < p <= 40 -> 31_TO_40
    return f"MATCH_RATE_RANGE_{upper - 9}_TO_{upper}"


def _matches(record: dict[str, list[Any]]) -> bool:
    """Whether Google "knows" this person: deterministic per identifiers."""
    key = "|".join(sorted(member_tokens(record))).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < MATCH_SHARE


def member_tokens(record: dict[str, list[Any]]) -> list[str]:
    tokens = [f"email:{v}" for v in record.get("emailAddress", [])]
    tokens += [f"phone:{v}" for v in record.get("phoneNumber", [])]
    tokens += ["address:" + "|".join(str(a.get(k, "")) for k in sorted(a)) for a in record.get("address", [])]
    return tokens


class Google(VendorApi):
    name = "google"

    def reset_state(self) -> None:
        self.user_lists: dict[str, dict[str, Any]] = {}  # productDestinationId -> {operating_account, members}
        self.statuses: OrderedDict[str, dict[str, Any]] = OrderedDict()  # requestId -> requestStatus answer

    def state(self) -> dict[str, Any]:
        return {
            "user_lists": {
                list_id: {
                    "operating_account": ul["operating_account"],
                    "count": len(ul["members"]),
                    "members": ul["members"].to_json(),
                }
                for list_id, ul in self.user_lists.items()
            }
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.user_lists = {
            list_id: {
                "operating_account": ul.get("operating_account", {}),
                "members": MemberSet.from_json(ul.get("members", []), member_tokens),
            }
            for list_id, ul in data.get("user_lists", {}).items()
        }

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/audienceMembers:ingest", self.endpoint(self.ingest), methods=["POST"]),
            Route("/v1/audienceMembers:remove", self.endpoint(self.remove), methods=["POST"]),
            Route("/v1/requestStatus:retrieve", self.endpoint(self.request_status), methods=["GET"]),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        return bearer_token(request)

    def auth_error(self, missing: bool) -> Response:
        if missing:
            message = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential."
        else:
            message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
        response = status_error(401, "UNAUTHENTICATED", message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        return response

    def rate_limited(self, check: WindowCheck) -> Response:
        limit = self.window.limit
        return status_error(
            429,
            "RESOURCE_EXHAUSTED",
            f"Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service '{DOMAIN}'.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {"service": DOMAIN, "quota_limit_value": str(limit), "quota_metric": "requests"},
                }
            ],
        )

    def server_error(self) -> Response:
        return status_error(503, "UNAVAILABLE", "The service is currently unavailable.")

    def refuse(self, refusal: Refusal) -> Response:
        if refusal.details is not None:
            return invalid_argument(refusal.details, reason=refusal.code or "INVALID_ARGUMENT")
        return invalid_argument([{"description": refusal.message}], reason="INVALID_ARGUMENT")

    # ---- validation ----------------------------------------------------------------------------

    @staticmethod
    def _hashed(value: Any, encoding: str, field: str, what: str, violations: list[dict[str, str]]) -> str | None:
        """The value as lowercase hex SHA-256, or None after recording why it is malformed."""
        if not isinstance(value, str) or not value:
            violations.append({"field": field, "description": f"{what} is empty.", "reason": "REQUIRED_FIELD_MISSING"})
            return None
        if encoding == "HEX":
            if not is_hex(value):
                violations.append(
                    {"field": field, "description": f"{what} is not hex encoded.", "reason": "INVALID_HEX_ENCODING"}
                )
                return None
            raw_hex = value.lower()
        else:
            try:
                raw_hex = base64.b64decode(value, validate=True).hex()
            except (binascii.Error, ValueError):
                violations.append(
                    {
                        "field": field,
                        "description": f"{what} is not base64 encoded.",
                        "reason": "INVALID_BASE64_ENCODING",
                    }
                )
                return None
        if len(raw_hex) != 64:
            violations.append({"field": field, "reason": "INVALID_SHA256_FORMAT"})
            return None
        return raw_hex

    def _targets(self, destinations: list[Any], violations: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The destinations a request names, as {list_id, operating_account} (recording what is malformed)."""
        targets: list[dict[str, Any]] = []
        for k, dest in enumerate(destinations):
            field = f"destinations[{k}]"
            if not isinstance(dest, dict):
                violations.append(
                    {"field": field, "description": "Destination must be an object.", "reason": "INVALID_DESTINATION"}
                )
                continue
            list_id = _get(dest, "productDestinationId", "product_destination_id")
            account = _get(dest, "operatingAccount", "operating_account")
            if not list_id:
                violations.append(
                    {
                        "field": f"{field}.product_destination_id",
                        "description": "Required field is missing.",
                        "reason": "REQUIRED_FIELD_MISSING",
                    }
                )
                continue
            if not isinstance(account, dict) or not _get(account, "accountId", "account_id"):
                violations.append(
                    {
                        "field": f"{field}.operating_account",
                        "description": "Required field is missing.",
                        "reason": "REQUIRED_FIELD_MISSING",
                    }
                )
                continue
            account_type = enum_name(_get(account, "accountType", "account_type"), ACCOUNT_TYPE_NUMBERS)
            if account_type not in ACCOUNT_TYPES:
                violations.append(
                    {
                        "field": f"{field}.operating_account.account_type",
                        "description": f"{account_type!r} is not an account type.",
                        "reason": "INVALID_ENUM_VALUE",
                    }
                )
                continue
            targets.append(
                {
                    "list_id": str(list_id),
                    "operating_account": {
                        "accountType": account_type,
                        "accountId": str(_get(account, "accountId", "account_id")),
                    },
                }
            )
        return targets

    def _user_record(self, identifiers: list[Any], encoding: str, prefix: str,
                     violations: list[dict[str, str]]) -> dict[str, list[Any]]:
        """The hashed identifiers of one record's user data (recording in `violations` what is malformed)."""
        before = len(violations)
        record: dict[str, list[Any]] = {}
        for ident in identifiers:
            field = f"{prefix}.user_data.user_identifiers"
            if not isinstance(ident, dict) or len(ident) != 1:
                violations.append(
                    {
                        "field": field,
                        "description": "Each user identifier holds exactly one of email_address, phone_number, address.",
                        "reason": "INVALID_FORMAT",
                    }
                )
                continue
            ((key, value),) = ident.items()
            if key in ("emailAddress", "email_address"):
                hashed = self._hashed(value, encoding, field, "Email", violations)
                if hashed:
                    record.setdefault("emailAddress", []).append(hashed)
            elif key in ("phoneNumber", "phone_number"):
                hashed = self._hashed(value, encoding, field, "Phone number", violations)
                if hashed:
                    record.setdefault("phoneNumber", []).append(hashed)
            elif key == "address" and isinstance(value, dict):
                address: dict[str, str] = {}
                for name, snake in (("givenName", "given_name"), ("familyName", "family_name")):
                    hashed = self._hashed(
                        _get(value, name, snake), encoding, f"{field}.address.{snake}", name, violations
                    )
                    if hashed:
                        address[name] = hashed
                region = _get(value, "regionCode", "region_code")
                postal = _get(value, "postalCode", "postal_code")
                if not (isinstance(region, str) and len(region) == 2 and region.isalpha()):
                    violations.append(
                        {
                            "field": f"{field}.address.region_code",
                            "description": "Region code must be an ISO 3166-1 alpha-2 code.",
                            "reason": "INVALID_COUNTRY_CODE",
                        }
                    )
                if not (isinstance(postal, str) and postal.strip()):
                    violations.append(
                        {
                            "field": f"{field}.address.postal_code",
                            "description": "Postal code is not valid.",
                            "reason": "INVALID_POSTAL_CODE",
                        }
                    )
                if len(violations) == before:
                    record.setdefault("address", []).append(
                        {**address, "regionCode": region.upper(), "postalCode": postal.strip()}
                    )
            else:
                violations.append(
                    {"field": field, "description": f"Unknown user identifier {key!r}.", "reason": "INVALID_FORMAT"}
                )
        return record

    def _read(self, body: Any, removing: bool) -> tuple[list[dict[str, Any]], list[dict[str, list[Any]]], bool]:
        if not isinstance(body, dict):
            raise Refusal("Invalid JSON payload received: expected an object.")
        violations: list[dict[str, str]] = []
        destinations = body.get("destinations")
        members = _get(body, "audienceMembers", "audience_members")
        encoding = enum_name(body.get("encoding"), ENCODING_NUMBERS)
        if not isinstance(destinations, list) or not destinations:
            violations.append(
                {
                    "field": "destinations",
                    "description": "Required field is missing.",
                    "reason": "REQUIRED_FIELD_MISSING",
                }
            )
            destinations = []
        elif len(destinations) > MAX_DESTINATIONS:
            raise Refusal(
                "too many destinations",
                code="TOO_MANY_DESTINATIONS",
                details=[
                    {
                        "field": "destinations",
                        "description": f"At most {MAX_DESTINATIONS} destinations.",
                        "reason": "TOO_MANY_DESTINATIONS",
                    }
                ],
            )
        if not isinstance(members, list) or not members:
            violations.append(
                {
                    "field": "audience_members",
                    "description": "Required field is missing.",
                    "reason": "REQUIRED_FIELD_MISSING",
                }
            )
            members = []
        elif len(members) > MAX_MEMBERS:
            raise Refusal(
                "too many audience members",
                code="TOO_MANY_AUDIENCE_MEMBERS",
                details=[
                    {
                        "field": "audience_members",
                        "description": f"Maximum number of audience members allowed per request is {MAX_MEMBERS:,}.",
                        "reason": "TOO_MANY_AUDIENCE_MEMBERS",
                    }
                ],
            )
        if encoding not in ("HEX", "BASE64"):
            violations.append(
                {
                    "field": "encoding",
                    "description": "encoding must be HEX or BASE64.",
                    "reason": "INVALID_ENUM_VALUE" if encoding else "REQUIRED_FIELD_MISSING",
                }
            )
            encoding = "HEX"
        consent = body.get("consent")
        if consent is not None and not removing:
            for key in ("adUserData", "adPersonalization"):
                value = enum_name(
                    _get(consent, key, "ad_user_data" if key == "adUserData" else "ad_personalization")
                    if isinstance(consent, dict)
                    else None,
                    CONSENT_NUMBERS,
                )
                if value is not None and value not in CONSENT_VALUES:
                    violations.append(
                        {
                            "field": f"consent.{key}",
                            "description": f"{value!r} is not a consent status.",
                            "reason": "INVALID_ENUM_VALUE",
                        }
                    )

        targets = self._targets(destinations, violations)

        records: list[dict[str, list[Any]]] = []
        rejects = self.faults.rejects if self.faults.rejects_rows else None
        for i, member in enumerate(members):
            prefix = f"audience_members.audience_members[{i}]"
            user_data = _get(member, "userData", "user_data") if isinstance(member, dict) else None
            identifiers = (
                _get(user_data, "userIdentifiers", "user_identifiers") if isinstance(user_data, dict) else None
            )
            if not isinstance(identifiers, list) or not identifiers:
                violations.append(
                    {
                        "field": f"{prefix}.user_data",
                        "description": "The audience member needs user_data with user identifiers.",
                        "reason": "INVALID_AUDIENCE_MEMBER",
                    }
                )
                continue
            if len(identifiers) > MAX_IDENTIFIERS:
                violations.append(
                    {
                        "field": f"{prefix}.user_data.user_identifiers",
                        "description": f"Maximum number of user identifiers allowed per audience member is {MAX_IDENTIFIERS}.",
                        "reason": "TOO_MANY_USER_IDENTIFIERS",
                    }
                )
                continue
            before = len(violations)
            record = self._user_record(identifiers, encoding, prefix, violations)
            if len(violations) != before:
                continue
            if rejects is not None and rejects("|".join(sorted(member_tokens(record)))):
                violations.append(
                    {"field": prefix, "description": REJECTION_MESSAGE, "reason": "INVALID_AUDIENCE_MEMBER"}
                )
                continue
            records.append(record)
        if violations:
            raise Refusal("There was a problem with the request.", details=violations)
        return targets, records, bool(_get(body, "validateOnly", "validate_only", False))

    # ---- endpoints -----------------------------------------------------------------------------

    async def ingest(self, request: Request) -> Response:
        """Add members to every destination user list (all or nothing)."""
        targets, records, validate_only = self._read(await self.json_body(request), removing=False)
        if not validate_only:
            for target in targets:
                ul = self.user_lists.get(target["list_id"])
                if ul is None:
                    ul = {"operating_account": target["operating_account"], "members": MemberSet(member_tokens)}
                    self.user_lists[target["list_id"]] = ul
                add = ul["members"].add
                for record in records:
                    add(record)
        return JSONBody({"requestId": self._record_status(targets, records, removing=False)})

    async def remove(self, request: Request) -> Response:
        """Remove members (matched by any identifier) from every destination user list."""
        targets, records, validate_only = self._read(await self.json_body(request), removing=True)
        if not validate_only:
            for target in targets:
                ul = self.user_lists.get(target["list_id"])
                if ul is not None:
                    for record in records:
                        ul["members"].remove(record)
        return JSONBody({"requestId": self._record_status(targets, records, removing=True)})

    def _record_status(self, targets: list[dict[str, Any]], records: list[dict[str, list[Any]]],
                       removing: bool) -> str:
        request_id = str(uuid.uuid4())
        counts = {"recordCount": str(len(records)),
                  "userIdentifierCount": str(sum(len(member_tokens(r)) for r in records))}
        if removing:
            status = {"audienceMembersRemovalStatus": {"userDataRemovalStatus": counts}}
        else:
            matched = sum(_matches(r) for r in records)
            status = {"audienceMembersIngestionStatus": {"userDataIngestionStatus": {
                **counts, "uploadMatchRateRange": match_rate_range(matched, len(records))}}}
        self.statuses[request_id] = {"requestStatusPerDestination": [
            {"destination": {"operatingAccount": t["operating_account"], "productDestinationId": t["list_id"]},
             "requestStatus": "SUCCESS", **status} for t in targets]}
        while len(self.statuses) > MAX_STATUSES:
            self.statuses.popitem(last=False)
        return request_id

    async def request_status(self, request: Request) -> Response:
        """What became of an ingest or removal request, per destination."""
        request_id = request.query_params.get("requestId") or request.query_params.get("request_id")
        if not request_id:
            return invalid_argument([{"field": "request_id", "description": "Required field is missing.",
                                      "reason": "REQUIRED_FIELD_MISSING"}])
        found = self.statuses.get(request_id)
        if found is None:
            return status_error(404, "NOT_FOUND", f"Request {request_id} was not found.")
        return JSONBody(found)


# Event ingestion (conversions) ---------------------------------------------------------------------

MAX_EVENTS = 2_000
EVENT_SOURCES = {1: "WEB", 2: "APP", 3: "IN_STORE", 4: "PHONE", 5: "OTHER", 6: "MESSAGE"}
FUTURE_SLACK_SECONDS = 60
_CURRENCY = re.compile(r"[A-Z]{3}")


def _event_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp ("2026-11-19T10:00:00Z", offsets and fractions allowed), or None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _bounded_list(value: Any, field: str, limit: int, reason: str, too_many: str,
                  violations: list[dict[str, str]]) -> list[Any]:
    """A request's required list; missing or empty is a violation, longer than `limit` refuses the request."""
    if not isinstance(value, list) or not value:
        violations.append({"field": field, "description": "Required field is missing.",
                           "reason": "REQUIRED_FIELD_MISSING"})
        return []
    if len(value) > limit:
        raise Refusal(f"too many {field}", code=reason, details=[{"field": field, "description": too_many,
                                                                  "reason": reason}])
    return value


class GoogleConversions(Google):
    """`POST /v1/events:ingest`: conversions for Google Ads conversion actions, fast-fail like the rest of
    the Data Manager API, one conversion kept per (conversion action, transactionId) as Google counts them."""

    name = "google_conversions"

    def reset_state(self) -> None:
        self.conversion_actions: dict[str, dict[str, Any]] = {}  # productDestinationId -> received, events...

    def state(self) -> dict[str, Any]:
        return {"conversion_actions": self.conversion_actions}

    def load_state(self, data: dict[str, Any]) -> None:
        self.conversion_actions = dict(data.get("conversion_actions", {}))

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/events:ingest", self.endpoint(self.ingest_events), methods=["POST"])]

    def _read_events(self, body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        if not isinstance(body, dict):
            raise Refusal("Invalid JSON payload received: expected an object.")
        violations: list[dict[str, str]] = []
        destinations = body.get("destinations")
        events = body.get("events")
        encoding = enum_name(body.get("encoding"), ENCODING_NUMBERS)
        destinations = _bounded_list(destinations, "destinations", MAX_DESTINATIONS, "TOO_MANY_DESTINATIONS",
                                     f"At most {MAX_DESTINATIONS} destinations.", violations)
        events = _bounded_list(events, "events", MAX_EVENTS, "TOO_MANY_EVENTS",
                               f"Maximum number of events allowed per request is {MAX_EVENTS:,}.", violations)
        if encoding not in ("HEX", "BASE64"):
            encoding = None  # required only when an event carries user data
        targets = self._targets(destinations, violations)
        for k, target in enumerate(targets):
            if target["operating_account"]["accountType"] != "GOOGLE_ADS":
                violations.append({"field": f"destinations[{k}].operating_account.account_type",
                                   "description": "Conversions go to a Google Ads account.",
                                   "reason": "INVALID_ACCOUNT_TYPE"})
        consent = body.get("consent")
        for key, snake in (("adUserData", "ad_user_data"), ("adPersonalization", "ad_personalization")):
            value = enum_name(_get(consent, key, snake) if isinstance(consent, dict) else None, CONSENT_NUMBERS)
            if value is not None and value not in CONSENT_VALUES:
                violations.append({"field": f"consent.{snake}", "description": f"{value!r} is not a consent status.",
                                   "reason": "INVALID_ENUM_VALUE"})

        now = time.time()
        rejects = self.faults.rejects if self.faults.rejects_rows else None
        kept: list[dict[str, Any]] = []
        for i, event in enumerate(events):
            prefix = f"events.events[{i}]"
            before = len(violations)
            if not isinstance(event, dict):
                violations.append({"field": prefix, "description": "Each event must be an object.",
                                   "reason": "INVALID_FORMAT"})
                continue
            when = _event_timestamp(_get(event, "eventTimestamp", "event_timestamp"))
            if when is None:
                violations.append({"field": f"{prefix}.event_timestamp",
                                   "description": "event_timestamp is required, an RFC 3339 timestamp.",
                                   "reason": "REQUIRED_FIELD_MISSING"})
            elif when.timestamp() > now + FUTURE_SLACK_SECONDS:
                violations.append({"field": f"{prefix}.event_timestamp",
                                   "description": "The event timestamp is in the future.",
                                   "reason": "INVALID_EVENT_TIMESTAMP"})
            transaction_id = _get(event, "transactionId", "transaction_id")
            if not isinstance(transaction_id, str) or not transaction_id:
                violations.append({"field": f"{prefix}.transaction_id",
                                   "description": "transaction_id is required for conversions from several sources.",
                                   "reason": "REQUIRED_FIELD_MISSING"})
            user_data = _get(event, "userData", "user_data")
            identifiers = _get(user_data, "userIdentifiers", "user_identifiers") if isinstance(user_data, dict) else None
            ad_identifiers = _get(event, "adIdentifiers", "ad_identifiers")
            gclid = ad_identifiers.get("gclid") if isinstance(ad_identifiers, dict) else None
            record: dict[str, list[Any]] = {}
            if isinstance(identifiers, list) and identifiers:
                if len(identifiers) > MAX_IDENTIFIERS:
                    violations.append({"field": f"{prefix}.user_data.user_identifiers",
                                       "description": f"Maximum number of user identifiers allowed per event is "
                                                      f"{MAX_IDENTIFIERS}.", "reason": "TOO_MANY_USER_IDENTIFIERS"})
                elif encoding is None:
                    violations.append({"field": "encoding", "description": "encoding is required with user data.",
                                       "reason": "REQUIRED_FIELD_MISSING"})
                else:
                    record = self._user_record(identifiers, encoding, prefix, violations)
            elif not (isinstance(gclid, str) and gclid):
                violations.append({"field": prefix, "description": "The event needs user_data or ad_identifiers.",
                                   "reason": "INVALID_EVENT"})
            source = enum_name(_get(event, "eventSource", "event_source"), EVENT_SOURCES)
            if source is not None and source not in EVENT_SOURCES.values():
                violations.append({"field": f"{prefix}.event_source", "description": f"{source!r} is not an event "
                                   "source.", "reason": "INVALID_ENUM_VALUE"})
            value = _get(event, "conversionValue", "conversion_value")
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                violations.append({"field": f"{prefix}.conversion_value", "description": "Must be a number.",
                                   "reason": "INVALID_FORMAT"})
            currency = event.get("currency")
            if currency is not None and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
                violations.append({"field": f"{prefix}.currency", "description": f"{currency!r} is not an ISO 4217 "
                                   "currency code.", "reason": "INVALID_CURRENCY_CODE"})
            if len(violations) == before and rejects is not None and rejects(str(transaction_id)):
                violations.append({"field": prefix, "description": REJECTION_MESSAGE, "reason": "INVALID_EVENT"})
            if len(violations) == before:
                kept.append({"transactionId": transaction_id, "eventTimestamp": when.isoformat() if when else None,
                             "eventSource": source, "conversionValue": value, "currency": currency,
                             "gclid": gclid, "userData": record})
        if violations:
            raise Refusal("There was a problem with the request.", details=violations)
        return targets, kept, bool(_get(body, "validateOnly", "validate_only", False))

    async def ingest_events(self, request: Request) -> Response:
        """Receive events: every one valid, or none kept (fast fail)."""
        targets, events, validate_only = self._read_events(await self.json_body(request))
        if not validate_only:
            for target in targets:
                action = self.conversion_actions.setdefault(target["list_id"], {
                    "operating_account": target["operating_account"], "received": 0, "duplicates": 0, "events": {}})
                action["received"] += len(events)
                for event in events:
                    if event["transactionId"] in action["events"]:
                        action["duplicates"] += 1  # Google counts a transaction once
                    else:
                        action["events"][event["transactionId"]] = event
        return JSONBody({"requestId": str(uuid.uuid4())})
