"""In-app and on-site messages: what the storefront shows the visitor (`GET /v1/messages/me`, or by an
identifier with a server key), read from the inbox the `in_app` channel writes (messaging/inbox.py).

The visitor is resolved exactly as by the profile endpoints (`Api.resolve`): a browser key only through a
signed identity token (`/me`) or the visitor's own device id, so a visitor never reads another customer's
messages. Only the messages due now, not expired, not dismissed, highest priority first, and only to a
visitor whose `consent_profiling` is true in the current snapshot (on-site content chosen from the profile,
as personalization is; the campaign's own consent was checked when it was sent). A `message_dismissed` event
accepted by `POST /v1/events` dismisses its message at once, before the warehouse hears of it: any message for
a server key, only the visitor's own for a browser key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activations.messaging.inbox import INBOX_FILE, MAX_SHOWN, Inbox
from activations.serve.identity import ME
from activations.serve.normalize import MAX_IDENTIFIER, normalize_identifier

ENDPOINT = "messages"
DISMISSED = "message_dismissed"


def inbox_of(api) -> Inbox:
    """The API's inbox reader, opened on first use beside its serving store."""
    inbox = getattr(api, "inbox", None)
    if inbox is None:
        inbox = api.inbox = Inbox(api.store.out / INBOX_FILE, create=False)
    return inbox


def messages_answer(api, header, client: str, id_type: str, value: str = "") -> Response:
    """The customer's due messages, as JSON (see the module doc)."""
    key = api.authorize(header, ENDPOINT, client)
    if isinstance(key, Response):
        return key
    found = api.resolve(key, header, id_type, value)
    if isinstance(found, Response):
        return found
    snapshot, customer_id = found
    profile = (snapshot.profile(customer_id) if customer_id else None) or {"traits": {}}
    consent = profile["traits"].get("consent_profiling") is True
    shown = inbox_of(api).due(customer_id, api.clock(), MAX_SHOWN) if customer_id and consent else []
    body = {"customer_id": customer_id if "customer_id" in key.fields else None, "personalized": consent,
            "messages": [m.as_json() for m in shown], "snapshot": snapshot.version}
    if customer_id and not consent and not key.is_browser:
        body["reason"] = "no_profiling_consent"
    return JSONResponse(body)


def dismissals(body, accepted: Iterable[int]) -> list[Mapping]:
    """The accepted `message_dismissed` events (with a message id) of an events request (`accepted`: the
    indexes of the events accepted)."""
    events = body.get("events") if isinstance(body, Mapping) and "events" in body else body
    events = events if isinstance(events, list) else [events]
    wanted = set(accepted)
    return [e for i, e in enumerate(events)
            if i in wanted and isinstance(e, Mapping) and e.get("event_type") == DISMISSED and e.get("message_id")]


def dismiss(api, body, outcomes, trust: str, signed: tuple[str, str] | None) -> None:
    """Dismiss, in the inbox, the messages an events request's accepted `message_dismissed` events name. A
    server key's events dismiss any message; a browser's only the visitor's own: the customer its identity
    token names (`signed`), else the one its device id (the event's anonymous_id) belongs to."""
    found = dismissals(body, [o.index for o in outcomes if o.status in ("accepted", "duplicate")])
    if not found:
        return
    inbox, now = inbox_of(api), api.clock()
    if trust == "server":
        inbox.dismiss([str(e["message_id"]) for e in found], now)
        return
    snapshot = api.store.snapshot()
    if snapshot is None:
        return
    for event in found:
        id_type, value = signed or ("device_id", str(event.get("anonymous_id") or ""))
        normalized = normalize_identifier(id_type, value[:MAX_IDENTIFIER])
        customer_id, _ = snapshot.resolve(id_type, normalized) if normalized else (None, 0)
        if customer_id:
            inbox.dismiss([str(event["message_id"])], now, customer_id=customer_id)


async def messages_by_identifier(request: Request) -> Response:
    return messages_answer(request.app.state.api, request.headers.get, _client(request), **request.path_params)


async def messages_me(request: Request) -> Response:
    return messages_answer(request.app.state.api, request.headers.get, _client(request), ME)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


ROUTES = [
    Route(f"/v1/messages/{ME}", messages_me, methods=["GET"]),
    Route("/v1/messages/{id_type}/{value:path}", messages_by_identifier, methods=["GET"]),
]
