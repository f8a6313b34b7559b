"""FCM's HTTP v1 API as a push channel: one `POST /v1/projects/{project_id}/messages:send` per device token
(FCM v1 has no batch send), JSON `{"message": {"token", "notification": {"title", "body"}, "data"}}`, an
OAuth 2.0 access token as `Authorization: Bearer`.

What FCM answers for one token, and what the engine makes of it (the `error.details[].errorCode` of a
`google.firebase.fcm.v1.FcmError`, else the `error.status`):

- 200 with the message's `name` (`projects/{id}/messages/{message_id}`): accepted for that device;
- 404 UNREGISTERED (the app was uninstalled, or the token expired): the token is *retired*
  (`Delivery.retired_tokens`, kept in `activation.push_tokens_retired`), never sent to again, not retried;
- 400 INVALID_ARGUMENT (a malformed token, a payload too big, a reserved data key), 403 SENDER_ID_MISMATCH
  (the token belongs to another Firebase project): that token failed, with FCM's code; the others go on;
- 429 QUOTA_EXCEEDED, 503 UNAVAILABLE: waited for (`Retry-After`, at most `RATE_LIMIT_WAIT` seconds, at
  most `RATE_LIMIT_TRIES` tries), then left to the next pass; a refused request delivered nothing;
- 500 INTERNAL, any other 5xx, or no answer in time: the outcome for that device is unknown;
- 401 UNAUTHENTICATED / THIRD_PARTY_AUTH_ERROR, 403 PERMISSION_DENIED, 404 for the project itself: the
  channel stops for the pass, its messages stay planned.

A customer with several devices gets the message on each. The message is `sent` when at least one device's
token was accepted (FCM's own confirmation); `unknown` when none was but at least one answer never came
(FCM has no API to ask afterwards: such a message is never resent, at-most-once); `planned` again when the
only failures were rate limits or outages that delivered nothing; `failed` when every token was refused.
Each token's result is in `Delivery.push_results`, recorded per message in `activation.push_deliveries`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import quote

from activations.destinations.base import Secret
from activations.destinations.transport import CONNECT_RETRY_DELAYS, HttpClient, response_json
from activations.messaging.delivery import (
    Delivery,
    OutgoingMessage,
    PushResult,
    accepted,
    patient_request,
    permanent,
    retry_after,
    stopped,
    transient,
)
from activations.messaging.push import token_sha256

RATE_LIMIT_WAIT = 5.0  # the longest Retry-After waited for inside a pass; longer: the next pass retries
RATE_LIMIT_TRIES = 3
RETRY_LATER = {"QUOTA_EXCEEDED", "UNAVAILABLE"}  # nothing was delivered: safe to send again
RETIRE = {"UNREGISTERED"}  # the token is dead: never again
TOKEN_REFUSED = {"INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}  # this token only; the others go on
# About our own credentials or project, not the device: nothing would go until someone fixes it.
STOP = {"UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "PERMISSION_DENIED", "NOT_FOUND"}
MESSAGE_ID_KEY = "attiva_message_id"  # in each push's data payload: which message the app received


def token_label(token: str) -> str:
    """A token as a reason may name it: never the token itself, 12 hex digits of its SHA-256."""
    return "token " + token_sha256(token)[:12]


def _busy(response: Any) -> bool:
    return response.status_code in (429, 503) or error_code(response_json(response)) in RETRY_LATER


def error_code(answer: Any) -> str | None:
    """FCM's error code: the `errorCode` of an FcmError detail, else the error's canonical `status`."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.firebase.fcm.v1.FcmError") \
                and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error["status"]) if error.get("status") else None


class FcmPushChannel:
    """Mobile push through FCM HTTP v1 (see the module doc for the contract and each answer's verdict)."""

    dagster_kind: ClassVar[str] = "firebase"  # the kind Dagster shows on its campaigns' assets
    recipient: ClassVar[str] = "push"  # the send path addresses its messages to the customer's active tokens

    def __init__(self, base_url: str, project_id: str, token: Secret, *, timeout: float = 30.0, pool_size: int = 4,
                 from_email: str = "", from_name: str = "", rate_limit_wait: float = RATE_LIMIT_WAIT,
                 ttl_seconds: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.project_id = project_id
        self.from_email, self.from_name = from_email, from_name
        self.rate_limit_wait = rate_limit_wait
        self.ttl_seconds = ttl_seconds
        self.http = HttpClient(self.base_url, token, platform="fcm", max_concurrency=pool_size,
                               connect_retry_delays=CONNECT_RETRY_DELAYS, read_timeout=timeout,
                               headers={"Authorization": f"Bearer {token.reveal()}"})

    def __repr__(self) -> str:
        return f"FcmPushChannel(base_url={self.base_url!r}, project_id={self.project_id!r})"

    @property
    def send_path(self) -> str:
        return f"/v1/projects/{quote(self.project_id, safe='')}/messages:send"

    def body(self, message: OutgoingMessage, token: str) -> dict[str, Any]:
        """The `messages:send` body for one device: title and text from the template, our id in `data`."""
        if not message.text.strip():
            raise ValueError("the message has no text")
        push: dict[str, Any] = {
            "token": token,
            "notification": {"title": message.subject, "body": message.text.strip()},
            # data values must be strings (FCM refuses anything else with INVALID_ARGUMENT)
            "data": {MESSAGE_ID_KEY: message.message_id, "campaign": message.campaign},
        }
        if self.ttl_seconds is not None:
            push["android"] = {"ttl": f"{self.ttl_seconds}s"}
            push["apns"] = {"headers": {"apns-expiration": str(int(time.time()) + self.ttl_seconds)}}
        return {"message": push}

    def send(self, message: OutgoingMessage) -> Delivery:
        """Each of the customer's tokens in turn; the message's verdict from theirs (the module doc)."""
        tokens = list(dict.fromkeys(t for t in message.to_tokens if t))
        if not tokens:
            return permanent("fcm: invalid message: no push token")
        results: list[PushResult] = []
        verdicts: list[Delivery] = []
        for token in tokens:
            try:
                body = self.body(message, token)
            except ValueError as exc:
                return permanent(f"fcm: invalid message: {exc}")
            delivery = self._send_one(body, token)
            if delivery.stop:  # credentials or project: the other tokens would be refused the same way
                return delivery
            verdicts.append(delivery)
            outcome = ("sent" if delivery.ok else "retired" if delivery.retired_tokens else
                       "failed" if delivery.permanent else
                       "unknown" if "outcome unknown" in (delivery.reason or "") else "retry")
            results.append(PushResult(token_sha256(token), outcome, delivery.provider_id if delivery.ok else
                                      delivery.reason))
        return self._verdict(verdicts, tuple(results))

    def _verdict(self, verdicts: list[Delivery], results: tuple[PushResult, ...]) -> Delivery:
        retired = tuple(t for d in verdicts for t in d.retired_tokens)
        sent = [d for d in verdicts if d.ok]
        if sent:
            confirmed = f"{len(sent)} of {len(verdicts)} device(s)"
            return replace(accepted(sent[0].status, sent[0].provider_id), retired_tokens=retired,
                           push_results=results, reason=None if len(sent) == len(verdicts) else confirmed)
        unknown = [d for d in verdicts if not d.ok and "outcome unknown" in (d.reason or "")]
        later = [d for d in verdicts if not d.ok and not d.permanent and d not in unknown]
        chosen = unknown[0] if unknown else later[0] if later else verdicts[0]
        if not unknown and not later and len(verdicts) > 1:  # every token refused: say so once, then the first why
            chosen = permanent(f"fcm: every device refused it ({len(verdicts)} tokens); first: {verdicts[0].reason}",
                               verdicts[0].status)
        return replace(chosen, retired_tokens=retired, push_results=results)

    def _send_one(self, body: dict[str, Any], token: str) -> Delivery:
        # QUOTA_EXCEEDED / UNAVAILABLE delivered nothing: waited for and sent again. No answer: unknown (FCM has
        # no way to ask afterwards), never resent blindly.
        response = patient_request(self.http, "POST", self.send_path, json_body=body, busy=_busy,
                                   wait_at_most=self.rate_limit_wait, tries=RATE_LIMIT_TRIES)
        if isinstance(response, Delivery):
            return response
        return self._token_verdict(response, error_code(response_json(response)), token)

    def _token_verdict(self, response: Any, code: str | None, token: str) -> Delivery:
        status = response.status_code
        answer = response_json(response)
        if status < 300:
            name = answer.get("name") if isinstance(answer, dict) else None
            return accepted(status, str(name) if name else None)
        error = answer.get("error") if isinstance(answer, dict) else None
        words = error.get("message") if isinstance(error, dict) else None
        # FCM's words may quote the token ("The registration token ... abc:..."): never stored or logged as is.
        words = str(words).replace(token, token_label(token)) if words else None
        reason = self.http.reason(response, f"{code}: {words}" if code else words)
        if code in RETIRE:
            return replace(permanent(f"{reason} ({token_label(token)} retired)", status), retired_tokens=(token,))
        if code in STOP or (status in (401, 403, 404) and code not in TOKEN_REFUSED):
            return stopped(reason, status)
        if code in RETRY_LATER or status in (429, 503):
            return transient(reason, status, retry_after(response))
        if status >= 500:
            return transient(f"outcome unknown: {reason}", status, retry_after(response))
        return permanent(f"{reason} ({token_label(token)})", status)

    def close(self) -> None:
        self.http.close()
