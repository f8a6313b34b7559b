"""What Twilio posts back about SMS: delivery statuses and replies, checked and landed.

- `POST /twilio/<channel>/status`: the status callback of a message sent by channel `<channel>` (its
  StatusCallback URL carries our message id): queued, sent, delivered, undelivered, failed.
- `POST /twilio/<channel>/inbound`: a reply to the channel's number (point the number's "A message comes
  in" webhook here). STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT and the Italian ANNULLA opt the number
  out; START and UNSTOP opt it back in to SMS from us (not to marketing: consent is not granted by it).

Both are form-encoded and signed with `X-Twilio-Signature` (HMAC-SHA1 of the URL and the sorted
parameters, keyed by the channel's auth token, ATTIVA_<CHANNEL>_TOKEN): a missing or wrong signature is
403 and nothing is written; a channel that is not a twilio_sms channel in channels.yml is 404. The URL
signed is the one the request reached, so a proxy in front must keep the scheme, host and path Twilio used.

What is written, durably, before the answer (Twilio retries a callback that fails):
- `<landing>/_sms_feedback/`: one event per callback or reply; the next messaging pass loads them into
  `activation.sms_events` and puts opted-out and unreachable numbers on the SMS suppression list
  (messaging/feedback.py), so no later SMS goes to them;
- for a STOP, also `consent/sms_stop/`: the SMS channel revoked for that number; the next dbt build sets
  the person's consent_sms false, as an email unsubscribe does consent_email (serve/unsubscribe.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from activations.config.errors import ConfigError
from activations.destinations.twilio.messages import MESSAGE_ID_PARAM
from activations.destinations.twilio.signature import SIGNATURE_HEADER, signature_ok
from activations.messaging.channels import twilio_webhook_token
from activations.messaging.feedback import SMS_FEEDBACK_FOLDER
from activations.serve.events import write_landing_file

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ANNULLA"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
STATUSES = frozenset({"queued", "accepted", "sending", "sent", "delivered", "undelivered", "failed", "read",
                      "canceled"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _verified(request: Request) -> dict[str, str] | Response:
    """The form Twilio posted, or the answer refusing it (404 unknown channel, 403 bad signature)."""
    name = request.path_params["channel"]
    try:
        token = twilio_webhook_token(name)
    except ConfigError:
        token = None
    if token is None:
        return PlainTextResponse(f"no twilio_sms channel named {name!r}", status_code=404)
    raw = await request.body()
    try:
        params = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return PlainTextResponse("expected a form-encoded body", status_code=400)
    if not signature_ok(token.reveal(), str(request.url), params, request.headers.get(SIGNATURE_HEADER)):
        return PlainTextResponse("invalid X-Twilio-Signature", status_code=403)
    return dict(params)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _write(landing: Path, folder: str, rows: list[dict], prefix: str) -> None:
    await asyncio.get_running_loop().run_in_executor(None, write_landing_file, landing / folder, rows, prefix)


async def status_callback(request: Request) -> Response:
    """POST /twilio/<channel>/status: one message's new status, landed as an SMS event."""
    form = await _verified(request)
    if isinstance(form, Response):
        return form
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    sid, phone = form.get("MessageSid") or form.get("SmsSid") or "", form.get("To") or ""
    if status not in STATUSES or not sid or not phone:
        return PlainTextResponse("expected MessageSid, To and a MessageStatus", status_code=400)
    api = request.app.state.api
    row = {"event_id": f"{sid}:{status}", "message_id": request.query_params.get(MESSAGE_ID_PARAM),
           "provider_id": sid, "phone": phone, "event_type": status, "error_code": form.get("ErrorCode") or None,
           "occurred_at": _stamp(api.clock()), "channel": request.path_params["channel"]}
    try:
        await _write(Path(api.writer.landing), f"{SMS_FEEDBACK_FOLDER}/status", [row], "twilio-status")
    except OSError:
        return PlainTextResponse("not written, retry", status_code=503)  # Twilio retries
    return PlainTextResponse("", status_code=200)


async def inbound(request: Request) -> Response:
    """POST /twilio/<channel>/inbound: a reply; STOP and its synonyms opt the number out (module doc)."""
    form = await _verified(request)
    if isinstance(form, Response):
        return form
    sender, body, sid = form.get("From") or "", (form.get("Body") or "").strip(), form.get("MessageSid") or ""
    word = body.upper().rstrip(".!")
    kind = "opt_out" if word in OPT_OUT_WORDS or form.get("OptOutType") == "STOP" else \
        "opt_in" if word in OPT_IN_WORDS or form.get("OptOutType") == "START" else None
    if kind is not None and sender:
        api = request.app.state.api
        at = _stamp(api.clock())
        event_id = sid or "inbound-" + hashlib.sha256(f"{sender}|{body}|{at}".encode()).hexdigest()[:24]
        landing = Path(api.writer.landing)
        try:
            await _write(landing, f"{SMS_FEEDBACK_FOLDER}/inbound", [{
                "event_id": event_id, "message_id": None, "provider_id": sid or None, "phone": sender,
                "event_type": kind, "error_code": None, "occurred_at": at, "reply": word,
                "channel": request.path_params["channel"]}], "twilio-inbound")
            if kind == "opt_out":
                await _write(landing, "consent/sms_stop", [{
                    "consent_id": f"sms-stop-{event_id}", "phone": sender, "channel": "sms", "status": "revoked",
                    "recorded_at": at, "source": "sms_stop"}], "sms-stop")
        except OSError:
            return PlainTextResponse("not written, retry", status_code=503)
    # No reply of our own: Twilio's opt-out handling confirms a STOP to the sender itself.
    return Response(EMPTY_TWIML, media_type="text/xml")
