"""Firebase Cloud Messaging HTTP v1: ``POST /v1/projects/{project_id}/messages:send``.

- JSON ``{"message": {"token", "notification": {"title", "body"}, "data": {...}, "android", "apns"}}``, one
  device per request (v1 has no batch). 200 ``{"name": "projects/{project_id}/messages/{id}"}``.
- ``Authorization: Bearer <access token>`` (``ATTIVA_FCM_TOKEN``, default ``sandbox-fcm-token``), else 401
  UNAUTHENTICATED; a project other than ``fcm_project_id`` is 404 NOT_FOUND.
- Errors in Google's shape, ``{"error": {"code", "message", "status", "details": [{"@type":
  "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode"}]}}``:
  400 INVALID_ARGUMENT (no target, a token that is not an FCM token, a data value that is not a string,
  a reserved data key such as ``from`` or ``google.*``, a payload above 4,096 bytes, and the tokens the
  fault injection's ``row_reject_rate`` picks), 404 UNREGISTERED (tokens in ``fcm_unregistered_tokens``,
  a ``fcm_unregistered_rate`` share of tokens by a hash, and those ``POST /_sandbox/fcm/unregister``
  names: an app uninstalled), 429 QUOTA_EXCEEDED with ``Retry-After`` past the project's window
  (600,000 messages a minute, FCM's default), 503 UNAVAILABLE with ``Retry-After`` for the fault
  injection's rate-limit faults (FCM's "overloaded"), 500 INTERNAL for its errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import bearer_token
from sandbox.base import Refusal, VendorApi, iso_now
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
STATUS_OF = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
TOKEN = re.compile(r"[A-Za-z0-9_\-:]{20,4096}")
MAX_PAYLOAD = 4096
RESERVED_DATA_KEYS = {"from", "notification", "message_type", "collapse_key", "gcm"}


def error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> JSONBody:
    """Google's error envelope; `code` an FCM ErrorCode carried as an FcmError detail."""
    body: dict[str, Any] = {"code": status, "message": message, "status": STATUS_OF.get(status, "UNKNOWN")}
    if code:
        body["details"] = [{"@type": FCM_ERROR, "errorCode": code}]
    return JSONBody({"error": body}, status_code=status, headers=headers)


class Fcm(VendorApi):
    name = "fcm"

    def reset_state(self) -> None:
        self.messages: list[dict[str, Any]] = []  # accepted, oldest first
        self.unregistered: dict[str, str] = {t: "configured" for t in self.config.fcm_unregistered_tokens}

    def state(self) -> dict[str, Any]:
        return {"project_id": self.config.fcm_project_id, "messages": self.messages,
                "unregistered": self.unregistered, "sent_count": len(self.messages)}

    def load_state(self, data: dict[str, Any]) -> None:
        self.messages = list(data.get("messages", []))
        self.unregistered = {**self.unregistered, **dict(data.get("unregistered", {}))}

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/projects/{project_id}/messages:send", self.endpoint(self.send), methods=["POST"])]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        return bearer_token(request)

    def auth_error(self, missing: bool) -> Response:
        words = ("Request is missing required authentication credential. Expected OAuth 2 access token."
                 if missing else "Request had invalid authentication credentials.")
        return error(401, words, None, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})

    def forced_limit(self) -> WindowCheck:
        # An injected back-off fault is FCM's overload answer (503 UNAVAILABLE), not the project's quota.
        return WindowCheck(False, self.window.limit, 0, 1.0, self.window.window_seconds, policy="overloaded")

    def rate_limited(self, check: WindowCheck) -> Response:
        after = {"Retry-After": str(max(1, math.ceil(check.reset_after)))}
        if check.policy == "overloaded":
            return error(503, "The service is currently unavailable.", "UNAVAILABLE", after)
        return error(429, "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.",
                     "QUOTA_EXCEEDED", after)

    def server_error(self) -> Response:
        return error(500, "Internal error encountered.", "INTERNAL")

    def refuse(self, refusal: Refusal) -> Response:
        return error(refusal.status, refusal.message, refusal.code)

    # ---- the endpoint ----------------------------------------------------------------------------

    def is_unregistered(self, token: str) -> bool:
        if token in self.unregistered:
            return True
        share = self.config.fcm_unregistered_rate
        return share > 0 and int(hashlib.sha256(token.encode()).hexdigest()[:8], 16) / 0x100000000 < share

    def unregister(self, tokens: list[str]) -> None:
        """The apps behind `tokens` were uninstalled: FCM answers UNREGISTERED from now on."""
        for token in tokens:
            self.unregistered[token] = "uninstalled"
        self.changed()

    async def send(self, request: Request) -> Response:
        project = request.path_params["project_id"]
        if project != self.config.fcm_project_id:
            raise Refusal(f"Requested entity was not found: project {project[:40]}", status=404)
        raw = await request.body()
        body = await self.json_body(request)
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            raise Refusal("Invalid JSON payload received. Unknown name or missing \"message\".", code="INVALID_ARGUMENT")
        targets = [k for k in ("token", "topic", "condition") if message.get(k)]
        if len(targets) != 1:
            raise Refusal("Exactly one of token, topic or condition must be set.", code="INVALID_ARGUMENT")
        token = str(message.get("token") or "")
        if not token:
            raise Refusal("Only messages to a registration token are served by this sandbox.", code="INVALID_ARGUMENT")
        data = message.get("data") or {}
        if not isinstance(data, dict) or any(not isinstance(v, str) for v in data.values()):
            raise Refusal("Invalid value at 'message.data': values must be strings.", code="INVALID_ARGUMENT")
        reserved = [k for k in data if k in RESERVED_DATA_KEYS or k.startswith("google")]
        if reserved:
            raise Refusal(f"Invalid data payload key: {reserved[0]}", code="INVALID_ARGUMENT")
        if len(json.dumps({"notification": message.get("notification"), "data": data}).encode()) > MAX_PAYLOAD \
                or len(raw) > 4 * MAX_PAYLOAD:
            raise Refusal("Message is too big: the payload exceeds 4096 bytes.", code="INVALID_ARGUMENT")
        if not TOKEN.fullmatch(token) or self.faults.rejects(token):
            raise Refusal("The registration token is not a valid FCM registration token", code="INVALID_ARGUMENT")
        if self.is_unregistered(token):
            raise Refusal("Requested entity was not found.", status=404, code="UNREGISTERED")
        name = f"projects/{project}/messages/0:{uuid.uuid4().int % 10**16:016d}%{uuid.uuid4().hex[:16]}"
        self.messages.append({"name": name, "token": token, "notification": message.get("notification"),
                              "data": data, "received_at": iso_now()})
        return JSONBody({"name": name})
