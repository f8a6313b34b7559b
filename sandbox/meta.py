"""Meta (Facebook) custom audiences: hashed users added, removed and replaced; and the Conversions
API's server events (``MetaConversions``, served under ``/meta_conversions``).

- ``POST`` (add) / ``DELETE`` (remove) ``/v{N}/{audience_id}/users`` with
  ``{"payload": {"schema": [...], "data": [[...], ...]}, "session": {...}}`` (a JSON body,
  or form/query parameters holding JSON strings, as the Graph API accepts), at most
  10,000 rows. Hashed keys must be 64-character lowercase SHA-256 hex; other rows are
  counted in ``num_invalid_entries`` and a few shown in ``invalid_entry_samples``
  (``{value: reason}``); Meta does not say which rows failed.
- ``POST /v{N}/{audience_id}/usersreplace`` (session required): the first batch of a
  session stages a new member set, the batch with ``last_batch_flag`` swaps it in.
- Auth: ``access_token`` parameter or ``Authorization: Bearer``; 401 with a Graph error
  (code 190 invalid token, 2500 none given).
- Rate limiting as Meta signals it: HTTP 400 with error code 17 / subcode 2446079 and an
  ``X-Business-Use-Case-Usage`` header whose ``estimated_time_to_regain_access`` is in minutes.
- ``POST /v{N}/{pixel_id}/events`` with ``{"data": [event, ...]}`` (at most 1,000 events; JSON, or
  form/query parameters holding JSON strings; an event may itself be a JSON string, as Meta's SDK sends
  it): the Conversions API. Every event is checked before any
  is kept; the first invalid one refuses the whole request (HTTP 400, Graph code 100, its position in
  ``error_data.event_index``) and none is processed, as Meta does. Checked: ``event_name``;
  ``event_time`` in Unix seconds, not more than 7 days old, not in the future; ``action_source``
  one of Meta's; ``user_data`` not empty, its contact keys 64-character lowercase SHA-256 hex;
  ``custom_data.value`` a number and ``currency`` three letters. Accepted: ``{"events_received": n,
  "messages": [], "fbtrace_id"}``; events are kept per pixel, one per (event_name, event_id) as Meta
  deduplicates them (a repeat is counted in ``duplicates``), with ``test_event_code`` kept apart.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.audiences import MemberSet
from sandbox.auth import bearer_token
from sandbox.base import Refusal, VendorApi, post_callback, trace_id
from sandbox.faults import REJECTION_MESSAGE
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody, dumps, loads

MAX_ROWS = 10_000
MAX_SAMPLES = 10
_VERSION = re.compile(r"v\d+\.\d+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
KNOWN_KEYS = {
    "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP", "COUNTRY",
    "MADID", "EXTERN_ID", "PAGEUID", "LOOKALIKE_VALUE",
}  # fmt: skip
UNHASHED_KEYS = {"MADID", "EXTERN_ID", "PAGEUID", "LOOKALIKE_VALUE"}
# Keys that identify a person on their own; the others only narrow a match.
STRONG_KEYS = ("EMAIL", "PHONE", "MADID", "EXTERN_ID", "PAGEUID")


def member_tokens(record: dict[str, str]) -> list[str]:
    tokens = [f"{k}:{record[k]}" for k in STRONG_KEYS if k in record]
    if tokens:
        return tokens
    return ["ROW:" + "|".join(f"{k}={v}" for k, v in sorted(record.items()))]


def graph_error(status: int, code: int, message: str, **extra: Any) -> JSONBody:
    error = {"message": message, "type": "OAuthException", "code": code, **extra, "fbtrace_id": trace_id()[:11]}
    return JSONBody({"error": error}, status_code=status)


def _canonical_key(key: object) -> str:
    if not isinstance(key, str):
        raise Refusal(f"(#100) Invalid schema field: {key!r}", code="100")
    name = key.upper().removesuffix("_SHA256")
    if name not in KNOWN_KEYS:
        raise Refusal(f"(#100) Invalid schema field: {key}", code="100")
    return name


def _json_param(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return loads(value)
        except ValueError:
            raise Refusal(f"(#100) Param {name} must be a JSON object", code="100") from None
    return value


def _graph_params(request: Request) -> dict[str, Any]:
    """The request's parameters, once its body parsed and its path named a Graph API version."""
    if request.state.graph_problem:
        raise Refusal(request.state.graph_problem, code="100")
    if not _VERSION.fullmatch(request.path_params["version"]):
        raise Refusal(f"Unknown path components: /{request.path_params['version']}", code="2500")
    return request.state.graph_params


class Meta(VendorApi):
    name = "meta"
    usage_type = "custom_audience"  # the business use case its throttling header names

    def reset_state(self) -> None:
        self.audiences: dict[str, MemberSet] = {}
        self.replace_sessions: dict[str, dict[str, Any]] = {}
        self._session_ids = itertools.count(secrets.randbelow(10**12) + 10**15)

    def state(self) -> dict[str, Any]:
        return {
            "audiences": {aid: {"count": len(m), "members": m.to_json()} for aid, m in self.audiences.items()},
            "replace_sessions": {
                sid: {**{k: v for k, v in s.items() if k != "members"}, "members": s["members"].to_json()}
                for sid, s in self.replace_sessions.items()
            },
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.audiences = {
            aid: MemberSet.from_json(a.get("members", []), member_tokens)
            for aid, a in data.get("audiences", {}).items()
        }
        self.replace_sessions = {
            sid: {**s, "members": MemberSet.from_json(s.get("members", []), member_tokens)}
            for sid, s in data.get("replace_sessions", {}).items()
        }

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/{version}/{audience_id}/users", self.endpoint(self.users), methods=["POST", "DELETE"]),
            Route("/{version}/{audience_id}/usersreplace", self.endpoint(self.users_replace), methods=["POST"]),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, Any]:
        """Query parameters merged with the body (JSON or form-encoded), parsed once per request."""
        cached = getattr(request.state, "graph_params", None)
        if cached is not None:
            return cached
        params: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        problem = None
        if raw:
            content_type = request.headers.get("content-type", "")
            try:
                if "application/x-www-form-urlencoded" in content_type:
                    params.update(parse_qsl(raw.decode(), keep_blank_values=True))
                else:
                    body = loads(raw)
                    if not isinstance(body, dict):
                        raise ValueError("body must be a JSON object")
                    params.update(body)
            except (ValueError, UnicodeDecodeError) as exc:
                problem = f"(#100) Could not parse the request body: {exc}"
        request.state.graph_params = params
        request.state.graph_problem = problem
        return params

    def credential(self, request: Request) -> str | None:
        token = request.state.graph_params.get("access_token")
        return token if isinstance(token, str) and token else bearer_token(request, schemes=("bearer", "oauth"))

    async def authenticate(self, request: Request) -> Response | None:
        await self._params(request)  # the token may be a form or query parameter
        return await super().authenticate(request)

    def auth_error(self, missing: bool) -> Response:
        if missing:
            return graph_error(
                401, 2500, "An active access token must be used to query information about the current user."
            )
        message = "Invalid OAuth access token - Cannot parse access token"
        response = graph_error(401, 190, message)
        response.headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{message}"'
        return response

    def _usage_header(self, check: WindowCheck) -> str:
        window = self.window
        if window.limit is None:
            share, regain = 0, 0
        else:
            share = 100 if not check.allowed else min(100, math.floor(window.used() * 100 / window.limit))
            regain = 0 if check.allowed else math.ceil(check.reset_after / 60)
        usage = {"type": self.usage_type, "call_count": share, "total_cputime": share, "total_time": share}
        usage["estimated_time_to_regain_access"] = regain
        return dumps({self.name: [usage]}).decode()

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        return {"X-Business-Use-Case-Usage": self._usage_header(check)}

    def rate_limited(self, check: WindowCheck) -> Response:
        return graph_error(
            400,
            17,
            "(#17) User request limit reached",
            error_subcode=2446079,
            is_transient=True,
            error_user_title="Too many calls",
            error_user_msg="There have been too many calls from this ad account. Wait a bit and try again.",
        )

    def server_error(self) -> Response:
        return graph_error(
            500, 2, "An unexpected error has occurred. Please retry your request later.", is_transient=True
        )

    def refuse(self, refusal: Refusal) -> Response:
        code = int(refusal.code) if refusal.code and refusal.code.isdigit() else 100
        return graph_error(refusal.status, code, refusal.message)

    # ---- endpoints -----------------------------------------------------------------------------

    def _read(self, request: Request) -> tuple[str, list[str], list[Any], dict[str, Any] | None]:
        params = _graph_params(request)
        payload = _json_param(params.get("payload"), "payload")
        if not isinstance(payload, dict):
            raise Refusal("(#100) The parameter payload is required", code="100")
        schema = payload.get("schema")
        data = payload.get("data")
        if isinstance(schema, str):
            keys = [_canonical_key(schema)]
            if isinstance(data, list):
                data = [[row] if isinstance(row, str) else row for row in data]
        elif isinstance(schema, list) and schema:
            keys = [_canonical_key(k) for k in schema]
        else:
            raise Refusal("(#100) payload.schema must be a key or a list of keys", code="100")
        if len(set(keys)) != len(keys):
            raise Refusal("(#100) payload.schema has a repeated key", code="100")
        if not isinstance(data, list) or not data:
            raise Refusal("(#100) payload.data must be a non-empty list of rows", code="100")
        if len(data) > MAX_ROWS:
            raise Refusal(f"(#100) Too many entries in the payload: {len(data)}, the maximum is {MAX_ROWS}", code="100")
        session = _json_param(params.get("session"), "session")
        if session is not None and not isinstance(session, dict):
            raise Refusal("(#100) Param session must be an object", code="100")
        return request.path_params["audience_id"], keys, data, session

    def _rows(self, keys: list[str], data: list[Any]) -> tuple[list[dict[str, str]], int, dict[str, str]]:
        """Valid rows as records, the number of invalid rows and a few samples with reasons."""
        width = len(keys)
        hashed = [k not in UNHASHED_KEYS for k in keys]
        sha = _SHA256.fullmatch
        rejects = self.faults.rejects if self.faults.rejects_rows else None
        records: list[dict[str, str]] = []
        invalid = 0
        samples: dict[str, str] = {}
        for row in data:
            reason = None
            sample = None
            if not isinstance(row, list) or len(row) != width:
                reason, sample = f"row must have {width} values, one per schema key", str(row)[:120]
            else:
                record = {}
                for key, value, must_hash in zip(keys, row, hashed, strict=True):
                    if value is None or value == "":
                        continue
                    if not isinstance(value, str) or (must_hash and sha(value) is None):
                        reason, sample = f"{key} is not a lowercase SHA-256 hex digest", str(value)[:120]
                        break
                    record[key] = value
                else:
                    if not record:
                        reason, sample = "row has no value", "|".join(map(str, row))
                    elif rejects is not None:
                        joined = "|".join(v or "" for v in row)
                        if rejects(joined):
                            reason, sample = REJECTION_MESSAGE, joined
            if reason is None:
                records.append(record)
                continue
            invalid += 1
            if len(samples) < MAX_SAMPLES:
                samples[sample] = reason
        return records, invalid, samples

    def _session_id(self, session: dict[str, Any] | None, required: bool) -> tuple[str, bool]:
        if session is None:
            if required:
                raise Refusal("(#100) The parameter session is required", code="100")
            return str(next(self._session_ids)), False
        for field, kind in (("session_id", int), ("batch_seq", int), ("last_batch_flag", bool)):
            value = session.get(field)
            if value is None:
                if required:
                    raise Refusal(f"(#100) session.{field} is required", code="100")
                continue
            if kind is bool and not isinstance(value, bool):
                raise Refusal(f"(#100) session.{field} must be a boolean", code="100")
            if kind is int:
                try:
                    int(value)
                except (TypeError, ValueError):
                    raise Refusal(f"(#100) session.{field} must be an integer", code="100") from None
        sid = session.get("session_id")
        return (str(int(sid)) if sid is not None else str(next(self._session_ids))), bool(
            session.get("last_batch_flag")
        )

    def _answer(
        self, audience_id: str, session_id: str, received: int, invalid: int, samples: dict[str, str]
    ) -> Response:
        return JSONBody(
            {
                "audience_id": audience_id,
                "session_id": session_id,
                "num_received": received,
                "num_invalid_entries": invalid,
                "invalid_entry_samples": samples,
            }
        )

    async def users(self, request: Request) -> Response:
        """Add (POST) or remove (DELETE) hashed users."""
        audience_id, keys, data, session = self._read(request)
        session_id, _ = self._session_id(session, required=False)
        records, invalid, samples = self._rows(keys, data)
        if request.method == "DELETE":
            members = self.audiences.get(audience_id)
            if members is not None:
                for record in records:
                    members.remove(record)
        else:
            members = self.audiences.get(audience_id)
            if members is None:
                members = self.audiences[audience_id] = MemberSet(member_tokens)
            add = members.add
            for record in records:
                add(record)
        return self._answer(audience_id, session_id, len(data), invalid, samples)

    async def users_replace(self, request: Request) -> Response:
        """Replace an audience's members over one session of batches."""
        audience_id, keys, data, session = self._read(request)
        session_id, last = self._session_id(session, required=True)
        records, invalid, samples = self._rows(keys, data)
        staged = self.replace_sessions.get(session_id)
        if staged is None:
            staged = {"audience_id": audience_id, "batches": 0, "received": 0, "members": MemberSet(member_tokens)}
            self.replace_sessions[session_id] = staged
        elif staged["audience_id"] != audience_id:
            raise Refusal(f"(#100) session {session_id} belongs to audience {staged['audience_id']}", code="100")
        staged["batches"] += 1
        staged["received"] += len(data)
        for record in records:
            staged["members"].add(record)
        if last:
            self.audiences[audience_id] = staged["members"]
            del self.replace_sessions[session_id]
        return self._answer(audience_id, session_id, len(data), invalid, samples)


# The Conversions API -------------------------------------------------------------------------------

MAX_EVENTS = 1_000
MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600
FUTURE_SLACK_SECONDS = 60
ACTION_SOURCES = {"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
                  "business_messaging", "other"}
HASHED_USER_DATA = {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"}
CLEAR_USER_DATA = {"external_id", "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id",
                   "fb_login_id", "lead_id", "madid", "anon_id", "page_id", "ctwa_clid"}


class EventRefusal(Refusal):
    """One event refuses the whole request: Meta names it, with a subcode and a message for people."""

    def __init__(self, index: int, title: str, message: str, subcode: int = 2804019) -> None:
        super().__init__("Invalid parameter", code="100")
        self.index, self.title, self.user_message, self.subcode = index, title, message, subcode


def _event_problem(event: Any, now: float) -> tuple[str, str, int] | None:
    """(title, message, subcode) of what makes Meta refuse this event; None when it is valid."""
    if not isinstance(event, dict):
        return "Invalid event", "Each entry of data must be an object.", 2804019
    if not isinstance(event.get("event_name"), str) or not event["event_name"]:
        return "Missing event_name", "The parameter event_name is required.", 2804019
    event_time = event.get("event_time")
    if isinstance(event_time, str) and event_time.isdigit():
        event_time = int(event_time)
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        return "Invalid event_time", "event_time must be a Unix timestamp in seconds.", 2804019
    if event_time < now - MAX_EVENT_AGE_SECONDS:
        return ("Event Timestamp Too Old", "The timestamp for this event is too far in the past. Events need to "
                "be sent from your server within 7 days of when they occurred.", 2804003)
    if event_time > now + FUTURE_SLACK_SECONDS:
        return "Event Timestamp In The Future", "The timestamp for this event is in the future.", 2804004
    if event.get("action_source") not in ACTION_SOURCES:
        return ("Invalid action_source", f"action_source must be one of {', '.join(sorted(ACTION_SOURCES))}.",
                2804050)
    user_data = event.get("user_data")
    if not isinstance(user_data, dict) or not user_data:
        return "Missing user_data", "The parameter user_data is required and must not be empty.", 2804019
    for key, value in user_data.items():
        values = value if isinstance(value, list) else [value]
        if key not in HASHED_USER_DATA | CLEAR_USER_DATA:
            return "Invalid user_data", f"Unknown customer information parameter {key}.", 2804019
        if not values or not all(isinstance(v, str) and v for v in values):
            return "Invalid user_data", f"user_data.{key} must be a string or a list of strings.", 2804019
        if key in HASHED_USER_DATA and not all(_SHA256.fullmatch(v) for v in values):
            return ("Unhashed customer information", f"user_data.{key} must be hashed with SHA-256 "
                    "(64 lowercase hex characters).", 2804022)
    custom = event.get("custom_data")
    if custom is not None:
        if not isinstance(custom, dict):
            return "Invalid custom_data", "custom_data must be an object.", 2804019
        value = custom.get("value")
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            return "Invalid value", "custom_data.value must be a number.", 2804019
        currency = custom.get("currency")
        if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency)):
            return "Invalid currency", "custom_data.currency must be a three-letter ISO 4217 code.", 2804019
    return None


class MetaConversions(Meta):
    """The Conversions API's events edge, with Meta's Graph errors, auth and throttling."""

    name = "meta_conversions"
    usage_type = "ads_management"

    def reset_state(self) -> None:
        self.pixels: dict[str, dict[str, Any]] = {}

    def state(self) -> dict[str, Any]:
        return {"pixels": self.pixels}

    def load_state(self, data: dict[str, Any]) -> None:
        self.pixels = dict(data.get("pixels", {}))

    def routes(self) -> list[BaseRoute]:
        return [Route("/{version}/{pixel_id}/events", self.endpoint(self.events), methods=["POST"])]

    def refuse(self, refusal: Refusal) -> Response:
        if isinstance(refusal, EventRefusal):
            return graph_error(400, 100, refusal.message, error_subcode=refusal.subcode, is_transient=False,
                               error_user_title=refusal.title, error_user_msg=refusal.user_message,
                               error_data={"event_index": refusal.index})
        return super().refuse(refusal)

    async def events(self, request: Request) -> Response:
        """Receive server events: every one valid, or none kept."""
        params = _graph_params(request)
        data = _json_param(params.get("data"), "data")
        if not isinstance(data, list) or not data:
            raise Refusal("(#100) The parameter data is required and must be a non-empty array", code="100")
        if len(data) > MAX_EVENTS:
            raise Refusal(f"(#100) Too many events in data: {len(data)}, the maximum is {MAX_EVENTS}", code="100")
        # Meta's own SDK posts each event as a JSON string inside the array: the Graph API reads both.
        data = [_json_param(event, "data") if isinstance(event, str) else event for event in data]
        now = time.time()
        rejects = self.faults.rejects if self.faults.rejects_rows else None
        for index, event in enumerate(data):
            problem = _event_problem(event, now)
            if problem is None and rejects is not None and rejects(str(event.get("event_id") or "")):
                problem = ("Rejected", REJECTION_MESSAGE, 2804019)
            if problem is not None:
                raise EventRefusal(index, *problem)
        test_code = params.get("test_event_code")
        pixel = self.pixels.setdefault(request.path_params["pixel_id"],
                                       {"received": 0, "duplicates": 0, "events": {}, "test_events": []})
        pixel["received"] += len(data)
        if isinstance(test_code, str) and test_code:
            pixel["test_events"].extend(data)
        else:
            events = pixel["events"]
            for event in data:
                key = f"{event['event_name']}:{event.get('event_id') or trace_id()}"
                if key in events:
                    pixel["duplicates"] += 1
                else:
                    events[key] = event
        return JSONBody({"events_received": len(data), "messages": [], "fbtrace_id": trace_id()[:11]})


class MetaLeads(Meta):
    """Lead Ads: the leads of a Page's lead forms, read one by one (``GET /v{N}/{leadgen_id}``, a Page access
    token), and the signed ``leadgen`` webhook Meta posts when a form is submitted (:meth:`submit`)."""

    name = "meta_leads"
    usage_type = "pages"

    def reset_state(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.webhooks: list[dict[str, Any]] = []  # what was posted where, and what it answered
        self._lead_ids = itertools.count(secrets.randbelow(10**12) + 10**15)

    def state(self) -> dict[str, Any]:
        return {"leads": self.leads, "webhooks": self.webhooks}

    def load_state(self, data: dict[str, Any]) -> None:
        self.leads = dict(data.get("leads", {}))
        self.webhooks = list(data.get("webhooks", []))

    def routes(self) -> list[BaseRoute]:
        return [Route("/{version}/{leadgen_id}", self.endpoint(self.lead), methods=["GET"])]

    async def lead(self, request: Request) -> Response:
        """One lead, with the fields asked for (``fields=``; id and created_time when none are)."""
        params = _graph_params(request)
        lead = self.leads.get(request.path_params["leadgen_id"])
        if lead is None:
            raise Refusal(f"(#100) Object with ID '{request.path_params['leadgen_id']}' does not exist, cannot be "
                          "loaded due to missing permissions, or does not support this operation", code="100")
        fields = [f.strip() for f in str(params.get("fields") or "id,created_time").split(",") if f.strip()]
        return JSONBody({"id": lead["id"], **{f: lead[f] for f in fields if f in lead}})

    async def submit(self, lead: dict[str, Any], url: str, app_secret: str) -> dict[str, Any]:
        """Keep `lead` (a form submitted: field_data, form_id, ad_id, page_id, platform, ...) and POST the
        leadgen webhook Meta would, signed with `app_secret`, to `url`. Answers the lead id and what `url`
        answered."""
        lead_id = str(lead.get("id") or next(self._lead_ids))
        now = int(time.time())
        stored = {"id": lead_id, "created_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now)),
                  "platform": "fb", "is_organic": False, "field_data": [],
                  **{k: v for k, v in lead.items() if k not in ("id", "page_id")}}
        self.leads[lead_id] = stored
        page_id = str(lead.get("page_id") or "100000000000001")
        value = {"leadgen_id": lead_id, "page_id": page_id, "form_id": stored.get("form_id"),
                 "ad_id": stored.get("ad_id"), "adgroup_id": stored.get("adgroup_id"), "created_time": now}
        body = dumps({"object": "page", "entry": [{"id": page_id, "time": now,
                                                     "changes": [{"field": "leadgen", "value": value}]}]})
        answer = await post_signed_json(url, body, app_secret)
        self.webhooks.append({"leadgen_id": lead_id, "url": url, "answered": answer})
        self.changed()
        return {"leadgen_id": lead_id, "answered": answer}


async def post_signed_json(url: str, body: bytes, app_secret: str) -> int | str:
    """POST `body` to `url` signed as Meta signs webhooks (X-Hub-Signature-256); the status answered, or why none."""
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua",
               "X-Hub-Signature-256": "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()}
    return await post_callback(url, body, headers)
