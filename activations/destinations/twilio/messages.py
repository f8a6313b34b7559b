"""Twilio's Messages API as an SMS channel: one `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` per
message, form-encoded (To, From or MessagingServiceSid, Body, StatusCallback), HTTP Basic auth with the
account SID and the auth token.

What Twilio answers, and what the engine makes of it:

- 201 with the Message (`sid`, `status` queued, or accepted through a Messaging Service): accepted, `sent`;
- 400 with a per-recipient error code (21211 invalid 'To', 21408 region not enabled, 21612 / 21614 /
  21635 not reachable by SMS, ...): this message `failed`, with Twilio's code and words; the others go on;
- 400 21610 (the recipient replied STOP to this sender): `suppressed`, and the number goes on the SMS
  suppression list (`Delivery.opted_out`);
- 429 (20429): waited for (`Retry-After`, at most `RATE_LIMIT_WAIT` seconds, twice), then retried by the
  next pass; a refused request created nothing, so sending it again cannot duplicate it;
- 5xx, or no answer in time: the request left and Twilio may have created the message, so the outcome is
  unknown: the next pass looks it up (`accepted`) instead of sending it blindly again;
- 401 (20003), 403, 404 (no such account), or an error about our own sender (21212, 21601, 21606, 21659;
  21703 / 21704, the Messaging Service): the channel stops, its messages stay planned.

Twilio has no idempotency key. What makes a message findable after a crash is a marker at the end of its
body, `#` and 8 hex digits of the message id's SHA-256 (`marker`): `accepted` lists the messages sent to
the number since the send began (`GET .../Messages.json?To=...&DateSent>=...`) and matches it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from activations.destinations.base import DestinationError, Secret
from activations.destinations.transport import CONNECT_RETRY_DELAYS, HttpClient, response_json
from activations.messaging.delivery import (
    Delivery,
    OutgoingMessage,
    accepted,
    http_delivery,
    patient_request,
    permanent,
    retry_after,
    stopped,
    transient,
)

API_VERSION = "2010-04-01"
# How long after a send Twilio's message list is trusted to show it (a queued message has no DateSent yet).
LOOKUP_LAG_SECONDS = 300.0
RATE_LIMIT_WAIT = 5.0  # the longest Retry-After waited for inside a pass; longer: the next pass retries
RATE_LIMIT_TRIES = 3
LOOKUP_PAGES = 5  # pages of 100 messages to one number asked about per unknown message
# The recipient opted out (STOP): suppress, never retry.
OPTED_OUT = {21610}
# Errors about our own account or sender, not this recipient: nothing would go until someone fixes it.
SENDER_ERRORS = {20003, 20404, 21212, 21601, 21606, 21659, 21703, 21704}
MESSAGE_ID_PARAM = "attiva_message_id"  # on the StatusCallback URL: which message a callback is about

# GSM 03.38: the default alphabet (one septet each) and its extension table (two: an escape, then the char).
GSM7_BASIC = frozenset("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def segments(text: str) -> tuple[str, int]:
    """The encoding (`GSM-7` or `UCS-2`) and the number of SMS segments `text` takes: up to 160 GSM-7
    characters (an extension character such as € counts 2) in one, else 153 per segment; with any other
    character the whole message is UCS-2: 70 UTF-16 units in one, else 67 per segment."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        return "GSM-7", 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


def marker(message_id: str) -> str:
    """What ends each body: `#` and 8 hex digits of the message id's SHA-256 (GSM-7, 9 characters)."""
    return "#" + hashlib.sha256(message_id.encode()).hexdigest()[:8]


class TwilioSmsChannel:
    """SMS through Twilio's Messages API (see the module doc for the contract and each answer's verdict)."""

    dagster_kind: ClassVar[str] = "twilio"  # the kind Dagster shows on its campaigns' assets
    recipient: ClassVar[str] = "phone"  # the send path addresses its messages to `to_phone`
    lookup_by_recipient: ClassVar[bool] = True  # `accepted` needs each message's number and send time

    def __init__(self, base_url: str, account_sid: str, token: Secret, *, from_number: str | None = None,
                 messaging_service_sid: str | None = None, status_callback: str | None = None,
                 max_segments: int = 3, activity_lag: float = LOOKUP_LAG_SECONDS, timeout: float = 30.0,
                 pool_size: int = 4, from_email: str = "", from_name: str = "",
                 rate_limit_wait: float = RATE_LIMIT_WAIT) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("a Twilio channel needs from_number or messaging_service_sid")
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.token = token
        self.from_number, self.messaging_service_sid = from_number, messaging_service_sid
        self.status_callback = status_callback
        self.max_segments = max_segments
        self.activity_lag = activity_lag
        self.rate_limit_wait = rate_limit_wait
        self.from_email, self.from_name = from_email, from_name
        self.http = HttpClient(self.base_url, token, platform="twilio", max_concurrency=pool_size,
                               connect_retry_delays=CONNECT_RETRY_DELAYS, read_timeout=timeout,
                               auth=(account_sid, token.reveal()))

    def __repr__(self) -> str:
        return f"TwilioSmsChannel(base_url={self.base_url!r}, account_sid={self.account_sid!r})"

    @property
    def messages_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{quote(self.account_sid, safe='')}/Messages.json"

    def body(self, message: OutgoingMessage) -> str:
        """The SMS text: the rendered text part, its marker on the last line."""
        text = message.text.strip()
        if not text:
            raise ValueError("the message has no text")
        return f"{text}\n{marker(message.message_id)}"

    def form(self, message: OutgoingMessage) -> dict[str, str]:
        """The `POST .../Messages.json` parameters for one message."""
        if not message.to_phone:
            raise ValueError("no phone number")
        body = self.body(message)
        encoding, parts = segments(body)
        if parts > self.max_segments:
            raise ValueError(f"the text takes {parts} {encoding} segments ({len(body)} characters), above this "
                             f"channel's max_segments of {self.max_segments}")
        form = {"To": message.to_phone, "Body": body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = str(self.from_number)
        if self.status_callback:
            joiner = "&" if "?" in self.status_callback else "?"
            form["StatusCallback"] = (f"{self.status_callback}{joiner}"
                                      f"{urlencode({MESSAGE_ID_PARAM: message.message_id})}")
        return form

    def send(self, message: OutgoingMessage) -> Delivery:
        """201 is accepted (the Message's `sid` is the provider id); the other answers as the module doc says."""
        try:
            data = urlencode(self.form(message)).encode()
        except ValueError as exc:
            return permanent(f"twilio: invalid message: {exc}")
        # A 429 created nothing: waited for and sent again. No answer: looked up next pass, never resent blindly.
        response = patient_request(self.http, "POST", self.messages_path, data=data,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"},
                                   busy=lambda r: r.status_code == 429, wait_at_most=self.rate_limit_wait,
                                   tries=RATE_LIMIT_TRIES)
        return response if isinstance(response, Delivery) else self._verdict(response)

    def _verdict(self, response: Any) -> Delivery:
        answer = response_json(response)
        status = response.status_code
        if status < 300:
            sid = answer.get("sid") if isinstance(answer, dict) else None
            return accepted(status, str(sid) if sid else None)
        code = answer.get("code") if isinstance(answer, dict) else None
        words = answer.get("message") if isinstance(answer, dict) else None
        reason = self.http.reason(response, f"{code}: {words}" if code else None)
        if status >= 500:
            return transient(f"outcome unknown: {reason}", status, retry_after(response))
        if code in OPTED_OUT:
            return Delivery(ok=False, permanent=True, status=status, reason=f"{reason} (the number opted out)",
                            provider_id=None, opted_out=True)
        if code in SENDER_ERRORS or status in (401, 403, 404):
            return stopped(reason, status)
        if status == 400 and code is not None:
            return permanent(reason, status)
        return http_delivery(self.http, response, None)

    def accepted(self, message_ids: list[str],
                 recipients: Mapping[str, tuple[str | None, datetime | None]] | None = None) -> dict[str, str | None]:
        """For each message id Twilio could be asked about: the `sid` of the message to its number, sent since
        its send began, whose body ends with its marker; None if there is none. Ids without a known number,
        or that could not be asked about now (rate limit, outage), are left out."""
        found: dict[str, str | None] = {}
        for message_id in message_ids:
            phone, since = (recipients or {}).get(message_id, (None, None))
            if not phone:
                continue
            params: dict[str, Any] = {"To": phone, "PageSize": 100}
            if since is not None:  # Twilio filters by UTC day; a day earlier covers a send across midnight
                params["DateSent>"] = (since - timedelta(days=1)).strftime("%Y-%m-%d")
            wanted, sid, asked = marker(message_id), None, False
            path: str | None = self.messages_path
            for _ in range(LOOKUP_PAGES):
                try:
                    response = self.http.request("GET", path, params=params)
                except DestinationError:
                    break
                answer = response_json(response)
                if response.status_code != 200 or not isinstance(answer, dict):
                    break
                messages = answer.get("messages")
                if not isinstance(messages, list):
                    break
                hit = next((m for m in messages if isinstance(m, dict)
                            and str(m.get("body") or "").rstrip().endswith(wanted)), None)
                if hit is not None:
                    sid, asked = str(hit.get("sid")), True
                    break
                next_page = answer.get("next_page_uri")
                if not next_page:
                    asked = True
                    break
                path, params = _relative(str(next_page)), None
            if asked:
                found[message_id] = sid
        return found

    def close(self) -> None:
        self.http.close()


def _relative(uri: str) -> str:
    """`next_page_uri` is rooted at Twilio's host (`/2010-04-01/...`); our base URL may have a prefix."""
    return uri if uri.startswith("/") else "/" + uri
