"""Twilio Programmable Messaging: the Messages resource, status callbacks and inbound messages.

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded: ``To`` (E.164, else 400 21211),
  ``From`` or ``MessagingServiceSid`` (neither: 400 21603), ``Body`` (required: 21602; at most 1,600
  characters: 21617), optional ``StatusCallback``. 201 with the Message: ``sid`` (``SM`` + 32 hex),
  ``status`` ``queued`` (``accepted`` through a Messaging Service), ``num_segments``, dates in RFC 2822.
  A number that replied STOP (or is in ``twilio_opted_out_numbers``) is 400 21610; a number whose
  country prefix is in ``twilio_blocked_prefixes`` is 400 21408. Errors are Twilio's shape
  ``{"code", "message", "more_info", "status"}``.
- ``GET .../Messages.json?To=&From=&DateSent>=YYYY-MM-DD&PageSize=`` (newest first, ``next_page_uri``
  while more), ``GET .../Messages/{Sid}.json``.
- HTTP Basic auth: the account SID as user name (it must be the one in the path) and the auth token
  (``ATTIVA_TWILIO_TOKEN``, default ``sandbox-twilio-token``); else 401 20003.
- A rolling window per account (100 requests a second by default): 429 20429 with ``Retry-After``.
- After acceptance, the status callbacks are POSTed to ``StatusCallback``, form-encoded and signed
  (``X-Twilio-Signature``, keyed by the auth token): ``sent``, then ``delivered``, or ``undelivered``
  (30003) for numbers in ``twilio_undelivered_numbers``, a ``twilio_undelivered_rate`` share of numbers
  (by a hash of the number: the same ones every time) and rows the fault injection rejects.
- ``POST /_sandbox/twilio/inbound`` ``{"from", "body", "url", "to"?}``: a reply from a phone, posted signed
  to ``url`` as Twilio posts an incoming message; STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (and
  the Italian ANNULLA) opt the number out, as Twilio's default opt-out handling does; START, UNSTOP opt it
  back in. Answers what ``url`` answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import urllib.parse
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import basic_credentials, twilio_signature
from sandbox.base import Refusal, VendorApi, post_callback
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody

API = "/2010-04-01/Accounts/{account_sid}"
E164 = re.compile(r"\+[1-9]\d{6,14}")
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ANNULLA"}
OPT_IN_WORDS = {"START", "UNSTOP", "YES"}
MAX_BODY = 1600
MAX_PAGE_SIZE = 1000
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
           "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f")


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONBody:
    return JSONBody({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                     "status": status}, status_code=status, headers=headers)


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=False).replace("-0000", "+0000")


def num_segments(body: str) -> int:
    if set(body) <= GSM7:
        units = sum(2 if c in "^{}\\[~]|€\f" else 1 for c in body)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


class Twilio(VendorApi):
    name = "twilio"

    def reset_state(self) -> None:
        self.messages: list[dict[str, Any]] = []  # oldest first
        self.opted_out: dict[str, str] = {n: "configured" for n in self.config.twilio_opted_out_numbers}
        self.callbacks: list[dict[str, Any]] = []  # what was posted where, and what it answered
        self.inbound_posts: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task] = set()

    def state(self) -> dict[str, Any]:
        return {"account_sid": self.config.twilio_account_sid, "messages": self.messages,
                "opted_out": self.opted_out, "callbacks": self.callbacks, "inbound": self.inbound_posts,
                "sent_count": len(self.messages)}

    def load_state(self, data: dict[str, Any]) -> None:
        self.messages = list(data.get("messages", []))
        self.opted_out = {**self.opted_out, **dict(data.get("opted_out", {}))}
        self.callbacks = list(data.get("callbacks", []))
        self.inbound_posts = list(data.get("inbound", []))

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/Messages.json", self.endpoint(self.create), methods=["POST"]),
            Route(f"{API}/Messages.json", self.endpoint(self.list_messages), methods=["GET"]),
            Route(API + "/Messages/{sid}.json", self.endpoint(self.fetch), methods=["GET"]),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        found = basic_credentials(request)
        if found is None:
            return None
        user, password = found
        # The account in the path must be the one authenticating, and the sandbox's.
        if user != request.path_params.get("account_sid") or user != self.config.twilio_account_sid:
            return ""
        return password

    def auth_error(self, missing: bool) -> Response:
        return error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def rate_limited(self, check: WindowCheck) -> Response:
        return error(429, 20429, "Too Many Requests", {"Retry-After": str(max(1, math.ceil(check.reset_after)))})

    def server_error(self) -> Response:
        return error(500, 20500, "Internal Server Error")

    def refuse(self, refusal: Refusal) -> Response:
        return error(refusal.status, int(refusal.code or 21100), refusal.message)

    # ---- endpoints -----------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        to, body = form.get("To", "").strip(), form.get("Body", "")
        sender, service = form.get("From", "").strip(), form.get("MessagingServiceSid", "").strip()
        if not to:
            raise Refusal("A 'To' phone number is required.", code="21604")
        if not E164.fullmatch(to):
            raise Refusal(f"Invalid 'To' Phone Number: {to[:30]}", code="21211")
        if not sender and not service:
            raise Refusal("A 'From' phone number is required.", code="21603")
        if not body:
            raise Refusal("Message body is required.", code="21602")
        if len(body) > MAX_BODY:
            raise Refusal("The concatenated message body exceeds the 1600 character limit.", code="21617")
        if any(to.startswith(prefix) for prefix in self.config.twilio_blocked_prefixes):
            raise Refusal(f"Permission to send an SMS has not been enabled for the region indicated by the 'To' "
                          f"number: {to}", code="21408")
        if to in self.opted_out:
            raise Refusal("Attempt to send to unsubscribed recipient", code="21610")
        now = datetime.now(UTC)
        account = request.path_params["account_sid"]
        sid = "SM" + uuid.uuid4().hex
        message = {
            "account_sid": account, "api_version": "2010-04-01", "body": body, "date_created": rfc2822(now),
            "date_sent": rfc2822(now), "date_updated": rfc2822(now), "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": sender or None,
            "messaging_service_sid": service or None, "num_media": "0", "num_segments": str(num_segments(body)),
            "price": None, "price_unit": "USD", "sid": sid, "status": "accepted" if service else "queued", "to": to,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        }
        answer = dict(message)
        message["status_callback"] = form.get("StatusCallback") or None  # kept for the state view only
        self.messages.append(message)
        task = asyncio.get_running_loop().create_task(self._progress(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONBody(answer, status_code=201)

    async def list_messages(self, request: Request) -> Response:
        query = request.query_params
        try:
            size = max(1, min(int(query.get("PageSize", "50")), MAX_PAGE_SIZE))
            page = max(0, int(query.get("Page", "0")))
        except ValueError:
            raise Refusal("PageSize and Page must be integers", code="20001") from None
        since = _day(query.get("DateSent>"))
        until = _day(query.get("DateSent<"))
        exact = _day(query.get("DateSent"))
        found = []
        for message in reversed(self.messages):  # newest first
            day = parsedate_to_datetime(message["date_sent"]).date()
            if (query.get("To") and message["to"] != query["To"]) or (query.get("From") and
                                                                     message["from"] != query["From"]):
                continue
            if (since and day < since) or (until and day > until) or (exact and day != exact):
                continue
            found.append({k: v for k, v in message.items() if k != "status_callback"})
        chunk = found[page * size:(page + 1) * size]
        base = request.url.path
        rest = [(k, v) for k, v in query.multi_items() if k not in ("Page", "PageSize")]

        def uri(n: int) -> str:
            return base + "?" + urllib.parse.urlencode([*rest, ("PageSize", size), ("Page", n)])

        return JSONBody({"messages": chunk, "page": page, "page_size": size, "start": page * size,
                         "end": page * size + max(0, len(chunk) - 1), "uri": uri(page), "first_page_uri": uri(0),
                         "next_page_uri": uri(page + 1) if (page + 1) * size < len(found) else None,
                         "previous_page_uri": uri(page - 1) if page else None})

    async def fetch(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        message = next((m for m in self.messages if m["sid"] == sid), None)
        if message is None:
            return error(404, 20404, f"The requested resource {request.url.path} was not found")
        return JSONBody({k: v for k, v in message.items() if k != "status_callback"})

    # ---- what happens after acceptance ---------------------------------------------------------

    def undelivered(self, number: str) -> bool:
        if number in self.config.twilio_undelivered_numbers or self.faults.rejects(number):
            return True
        share = self.config.twilio_undelivered_rate
        return share > 0 and int(hashlib.sha256(number.encode()).hexdigest()[:8], 16) / 0x100000000 < share

    async def _progress(self, message: dict[str, Any]) -> None:
        """queued -> sent -> delivered | undelivered, each change posted to the StatusCallback."""
        await asyncio.sleep(self.config.twilio_callback_delay)
        final = ["sent", "undelivered" if self.undelivered(message["to"]) else "delivered"]
        for status in final:
            message["status"] = status
            message["date_updated"] = rfc2822(datetime.now(UTC))
            if status == "undelivered":
                message["error_code"], message["error_message"] = 30003, "Unreachable destination handset"
            self.changed()
            url = message.get("status_callback")
            if not url:
                continue
            params = {"AccountSid": message["account_sid"], "ApiVersion": "2010-04-01", "From": message["from"] or "",
                      "MessageSid": message["sid"], "MessageStatus": status, "SmsSid": message["sid"],
                      "SmsStatus": status, "To": message["to"]}
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if status == "undelivered":
                params["ErrorCode"] = "30003"
            answer = await self.post_signed(url, params)
            self.callbacks.append({"sid": message["sid"], "status": status, "url": url, "answered": answer})
            self.changed()

    async def post_signed(self, url: str, params: dict[str, str]) -> int | str:
        """POST `params` form-encoded to `url`, signed as Twilio signs; the status answered, or why none."""
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": twilio_signature(self.secret, url, params.items()),
                   "User-Agent": "TwilioProxy/1.1"}
        return await post_callback(url, urllib.parse.urlencode(params).encode(), headers)

    async def inbound(self, sender: str, body: str, url: str, to: str | None = None) -> int | str:
        """A reply from `sender`: Twilio's opt-out handling, then the signed incoming-message webhook to `url`."""
        word = body.strip().upper()
        if word in OPT_OUT_WORDS:
            self.opted_out[sender] = f"replied {word}"
        elif word in OPT_IN_WORDS:
            self.opted_out.pop(sender, None)
        sid = "SM" + uuid.uuid4().hex
        params = {"AccountSid": self.config.twilio_account_sid, "ApiVersion": "2010-04-01", "Body": body,
                  "From": sender, "MessageSid": sid, "NumMedia": "0", "NumSegments": "1", "SmsMessageSid": sid,
                  "SmsSid": sid, "SmsStatus": "received", "To": to or "+390200000000"}
        if word in OPT_OUT_WORDS | OPT_IN_WORDS:
            params["OptOutType"] = "STOP" if word in OPT_OUT_WORDS else "START"
        answer = await self.post_signed(url, params)
        self.inbound_posts.append({"sid": sid, "from": sender, "body": body, "url": url, "answered": answer})
        self.changed()
        return answer


def _day(value: str | None):
    if not value:
        return None
    try:
        return datetime.strptime(value[:10], "%Y-%m-%d").date()
    except ValueError:
        raise Refusal(f"Invalid date: {value}", code="20001") from None
