"""The personalization API: starlette routes over the serving store, and the uvicorn runner.

Errors always have the body `{"error": {"code": ..., "message": ...}}`; codes are stable:
unauthorized (401), invalid_identity_token (401), forbidden (403), not_found (404),
unknown_audience (404), unknown_id_type (400), invalid_identifier (400), invalid_request (400),
ambiguous_identifier (409), payload_too_large (413), invalid_body (400), rate_limited (429, with
Retry-After), no_snapshot (503), not_written (503: events could not be written, retry).

Keys come in two kinds (keys.py, docs/security.md). A server key looks anyone up by any
identifier. A browser key is public (it is in the page), so it may look up only the visitor itself:
by its device id, or with `/me` and an identity token the shop's backend signed (identity.py). To a
browser key an unknown visitor, one without profiling consent and a shared identifier all answer
the same `personalized: false`, so it cannot learn who is a customer.

Consent: a visitor whose consent_profiling is not true gets no personalization. Their profile
answers 200 with `personalized: false` and empty traits, audiences, recommendations and
promotions (only customer_id, when the key may see it), so a page shows generic content; an
audience membership question answers `member: false`, never revealing a membership.

Lookups and snapshot switches happen on the event loop without awaiting in between, so every
answer comes from one whole snapshot; event files are written and fsync'ed in the thread pool,
concurrent requests sharing a file (group commit, `events.EventWriter.append`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import secrets
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from activations import settings
from activations.serve import events as event_intake
from activations.serve import identity, messages, meta_leads, sms, unsubscribe
from activations.serve.keys import (
    BROWSER_FIELDS,
    ENDPOINTS,
    FAILURE_RATE,
    ApiKey,
    KeysConfig,
    RateLimiter,
    hash_key,
    new_key,
)
from activations.serve.normalize import MAX_IDENTIFIER, normalize_identifier
from activations.serve.openapi import openapi_document
from activations.serve.store import LOOKUP_TYPES, ServingStore

STATIC = Path(__file__).parent / "static"
DEMO_KEY_NAME = "demo-page"
ME = identity.ME
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")

Header = Callable[[str], str | None]


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def error(status: int, code: str, message: str, headers: dict | None = None) -> JSON:
    return JSON({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class Api:
    """The state behind the routes: keys, store, rate limiter, event writer, clock, identity secret."""

    def __init__(self, keys: KeysConfig, store: ServingStore, landing: Path, clock: Callable[[], datetime],
                 demo_key: str | None = None, identity_secret: str | None = None):
        self.keys = keys
        self.by_hash = keys.by_hash()
        self.store = store
        self.writer = event_intake.EventWriter(landing)
        self.clock = clock
        self.limiter = RateLimiter()
        self.demo_key = demo_key
        self.identity_secret = identity_secret

    def authorize(self, header: Header, endpoint: str, client: str) -> ApiKey | Response:
        """The caller's key (from `header(name)`), or the 401 / 403 / 429 answer. Rates are per key and
        client address; failed authentications are limited per address too."""
        bearer = header("authorization") or ""
        presented = bearer[7:].strip() if bearer[:7].lower() == "bearer " else header("x-api-key") or ""
        key = self.by_hash.get(hash_key(presented)) if presented else None
        if key is None:
            wait = self.limiter.take_from(("failed authentication", client), FAILURE_RATE["per_second"],
                                          FAILURE_RATE["burst"])
            if wait:
                return _rate_limited(wait, f"too many failed authentications from {client or 'this address'}")
            return error(401, "unauthorized", "missing or unknown API key (Authorization: Bearer KEY or X-Api-Key)",
                         {"WWW-Authenticate": "Bearer"})
        if endpoint not in key.endpoints:
            return error(403, "forbidden", f"key {key.name!r} may not call the {endpoint} endpoint")
        wait = self.limiter.take(key, client)
        if wait:
            return _rate_limited(wait, f"key {key.name!r} is limited to {key.per_second:g} requests/s "
                                       f"(burst {key.burst}) per client address")
        return key

    def verified_identity(self, header: Header) -> tuple[str, str] | Response:
        """The (id_type, value) the request's identity token signs, or the 401 answer."""
        found = identity.verify_identity(header(identity.HEADER) or "", self.identity_secret)
        if found is None:
            why = "identity tokens are off (ATTIVA_IDENTITY_SECRET is not set)" if not self.identity_secret else \
                f"missing, expired or wrongly signed {identity.HEADER} token"
            return error(401, "invalid_identity_token", why)
        return found

    def resolve(self, key: ApiKey, header: Header, id_type: str, value: str):
        """(snapshot, customer_id) or an error response. To a browser key, an unknown or shared
        identifier is (snapshot, None): it answers like a visitor without consent."""
        if id_type == ME:
            found = self.verified_identity(header)
            if isinstance(found, Response):
                return found
            id_type, value = found
        elif id_type not in LOOKUP_TYPES:
            return error(400, "unknown_id_type", f"id type must be one of {', '.join(LOOKUP_TYPES)} or {ME}")
        elif key.is_browser and id_type != "device_id":
            return error(403, "forbidden", f"key {key.name!r} is a browser key: it may look up only the visitor "
                         f"itself, by device_id or by /{ME} with a signed identity token; {id_type} lookups need a "
                         "server key")
        if len(value) > MAX_IDENTIFIER:
            return error(400, "invalid_identifier", f"identifier longer than {MAX_IDENTIFIER} characters")
        snapshot = self.store.snapshot()
        if snapshot is None:
            return error(503, "no_snapshot", "no serving snapshot yet: build one (attiva serve --build, or the "
                         "serving/store asset)", {"Retry-After": "5"})
        normalized = normalize_identifier(id_type, value)
        customer_id, people = snapshot.resolve(id_type, normalized) if normalized else (None, 0)
        if customer_id is None and key.is_browser:
            return snapshot, None
        if customer_id is None and people > 1:
            return error(409, "ambiguous_identifier", f"this {id_type} is shared by {people} people")
        if customer_id is None:
            return error(404, "not_found", f"no customer with this {id_type}")
        return snapshot, customer_id


def _rate_limited(wait: float, message: str) -> JSON:
    seconds = max(1, math.ceil(wait))
    return error(429, "rate_limited", f"{message}; retry in {seconds} s", {"Retry-After": str(seconds)})


def _profile_body(api: Api, key: ApiKey, snapshot, customer_id: str | None) -> dict:
    found = snapshot.profile(customer_id) if customer_id else None
    found = found or {"traits": {}, "audiences": [], "recommendations": []}
    consent = found["traits"].get("consent_profiling") is True
    body = {"customer_id": customer_id if "customer_id" in key.fields else None, "personalized": consent,
            "traits": {}, "audiences": [], "recommendations": [], "promotions": [], "snapshot": snapshot.version}
    if not consent:
        if not key.is_browser:  # a browser key cannot tell unknown, shared and no consent apart
            body["reason"] = "no_profiling_consent"
        return body
    body["traits"] = {k: v for k, v in found["traits"].items() if k in key.fields}
    if "audiences" in key.fields:
        body["audiences"] = found["audiences"]
    if "recommendations" in key.fields:
        body["recommendations"] = [{**r, **(snapshot.product(r["product_id"]) or {})} for r in found["recommendations"]]
    favourite = snapshot.product(found["traits"].get("favourite_product_id"))
    now = api.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    if "promotions" in key.fields and favourite and favourite["is_on_promotion"] and \
            (favourite["promotion_ends_at"] or "9999") > now:  # active now, not only when the snapshot was built
        body["promotions"] = [{**favourite, "reason": "favourite_product"}]
    return body


def profile_answer(api: Api, header: Header, client: str, id_type: str, value: str = "") -> Response:
    key = api.authorize(header, "profiles", client)
    if isinstance(key, Response):
        return key
    found = api.resolve(key, header, id_type, value)
    if isinstance(found, Response):
        return found
    return JSON(_profile_body(api, key, *found))


def membership_answer(api: Api, header: Header, client: str, name: str, id_type: str, value: str = "") -> Response:
    key = api.authorize(header, "audiences", client)
    if isinstance(key, Response):
        return key
    name = name.removeprefix("aud_")
    found = api.resolve(key, header, id_type, value)
    if isinstance(found, Response):
        return found
    snapshot, customer_id = found
    if name not in snapshot.audiences:
        known = f" (known: {', '.join(sorted(snapshot.audiences))})" if "audiences" in key.fields else ""
        return error(404, "unknown_audience", f"no audience {name!r}{known}")
    found = (snapshot.profile(customer_id) if customer_id else None) or {"traits": {}, "audiences": []}
    consent = found["traits"].get("consent_profiling") is True
    member = consent and name in found["audiences"]
    return JSON({"audience": name, "member": member, "personalized": consent, "snapshot": snapshot.version})


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def profile(request: Request) -> Response:
    return profile_answer(request.app.state.api, request.headers.get, _client(request), **request.path_params)


async def profile_me(request: Request) -> Response:
    return profile_answer(request.app.state.api, request.headers.get, _client(request), ME)


async def membership(request: Request) -> Response:
    return membership_answer(request.app.state.api, request.headers.get, _client(request), **request.path_params)


async def membership_me(request: Request) -> Response:
    return membership_answer(request.app.state.api, request.headers.get, _client(request),
                             request.path_params["name"], ME)


def _trust(api: Api, key: ApiKey, header: Header) -> tuple[str, tuple[str, str] | None] | Response:
    """How far the request's events are believed: server keys are, browser keys only with a valid token."""
    if not key.is_browser:
        return "server", None
    if not header(identity.HEADER):
        return "browser", None
    found = api.verified_identity(header)
    return found if isinstance(found, Response) else ("signed", found)


async def events_answer(api: Api, header: Header, client: str, chunks: AsyncIterator[bytes]) -> Response:
    key = api.authorize(header, "events", client)
    if isinstance(key, Response):
        return key
    trust = _trust(api, key, header)
    if isinstance(trust, Response):
        return trust
    declared = header("content-length")
    if declared and declared.isdigit() and int(declared) > event_intake.MAX_BODY_BYTES:
        return error(413, "payload_too_large", f"body larger than {event_intake.MAX_BODY_BYTES} bytes")
    raw = bytearray()
    async for chunk in chunks:
        raw += chunk
        if len(raw) > event_intake.MAX_BODY_BYTES:
            return error(413, "payload_too_large", f"body larger than {event_intake.MAX_BODY_BYTES} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return error(400, "invalid_body", f"the body is not JSON: {exc}")
    if isinstance(body, list) and len(body) > event_intake.MAX_BATCH or \
            isinstance(body, dict) and len(body.get("events") or []) > event_intake.MAX_BATCH:
        return error(413, "payload_too_large", f"at most {event_intake.MAX_BATCH} events per request")
    try:
        outcomes = await event_intake.collect(body, api.clock(), api.writer, *trust)
    except OSError as exc:  # disk full, landing folder gone: nothing of this request was acknowledged
        return error(503, "not_written", f"the events could not be written to the landing folder "
                     f"({exc.strerror or type(exc).__name__}); retry later", {"Retry-After": "5"})
    messages.dismiss(api, body, outcomes, *trust)  # a dismissed in-app message is not shown again, from now
    counts = {s: sum(o.status == s for o in outcomes) for s in ("accepted", "duplicate", "rejected")}
    status = 200 if not counts["rejected"] else 400 if counts["rejected"] == len(outcomes) else 207
    return JSON({**counts, "results": [o.as_json() for o in outcomes]}, status_code=status)


async def post_events(request: Request) -> Response:
    return await events_answer(request.app.state.api, request.headers.get, _client(request), request.stream())


class FastPath:
    """API calls without an Origin header (servers, apps: most of the traffic) go straight to their
    handler: Starlette's middleware, router and Request cost ~90 µs of a ~200 µs lookup. The answers
    are the same; anything else (a browser's CORS request, the page, the OpenAPI document) goes to
    the Starlette app. Every request with more than one credential header is refused here first: the
    two paths would read different ones (a dict keeps the last, Starlette the first)."""

    def __init__(self, app: Starlette, api: Api):
        self.app, self.api, self.state = app, api, app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            if sum(name in CREDENTIAL_HEADERS for name, _ in scope["headers"]) > 1:
                answer = error(400, "invalid_request", "send one credential: a single Authorization or X-Api-Key "
                               "header")
                await answer(scope, receive, send)
                return
            method, path = scope["method"], scope["path"]
            if method == "GET" and path.startswith(("/v1/profiles/", "/v1/audiences/")) or \
                    method == "POST" and path == "/v1/events":
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                if "origin" not in headers:
                    client = scope["client"][0] if scope.get("client") else ""
                    if method == "POST":
                        try:
                            answer = await events_answer(self.api, headers.get, client, _body(receive))
                        except ClientDisconnect:
                            return  # nothing was written: the client will send them again
                    else:
                        answer = self._lookup(path, headers.get, client)
                    if answer is not None:
                        await answer(scope, receive, send)
                        return
        await self.app(scope, receive, send)

    def _lookup(self, path: str, header: Header, client: str) -> Response | None:
        if path.startswith("/v1/profiles/"):
            id_type, _, value = path[13:].partition("/")
            if id_type == ME and not value:
                return profile_answer(self.api, header, client, ME)
            if id_type and value:
                return profile_answer(self.api, header, client, id_type, value)
            return None
        name, _, rest = path[14:].partition("/")
        members, _, rest = rest.partition("/")
        id_type, _, value = rest.partition("/")
        if name and members == "members" and id_type == ME and not value:
            return membership_answer(self.api, header, client, name, ME)
        if name and members == "members" and id_type and value:
            return membership_answer(self.api, header, client, name, id_type, value)
        return None  # not an API path: the Starlette app answers (404)


async def _body(receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def openapi(request: Request) -> Response:
    return JSON(openapi_document())


async def health(request: Request) -> Response:
    snapshot = request.app.state.api.store.snapshot()
    return JSON({"status": "ok" if snapshot else "no_snapshot", "snapshot": snapshot.version if snapshot else None})


async def demo_page(request: Request) -> Response:
    api: Api = request.app.state.api
    if api.demo_key is None:
        return error(404, "not_found", "the demo page is off (attiva serve --demo turns it on)")
    page = _static("index.html").decode().replace("__DEMO_KEY__", api.demo_key)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


async def demo_sign_in(request: Request) -> Response:
    """Demo only: stands in for a shop's login, signing an identity token for the email typed in."""
    api: Api = request.app.state.api
    if api.demo_key is None:
        return error(404, "not_found", "the demo page is off (attiva serve --demo turns it on)")
    try:
        email = str(orjson.loads(await request.body())["email"]).strip()
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return error(400, "invalid_body", f"expected {{\"email\": ...}}: {exc}")
    if not email or len(email) > MAX_IDENTIFIER:
        return error(400, "invalid_identifier", f"an email of 1 to {MAX_IDENTIFIER} characters")
    return JSON({"token": identity.sign_identity("email", email, api.identity_secret)})


async def demo_script(request: Request) -> Response:
    return Response(_static("storefront.js"), media_type="text/javascript")


@functools.cache
def _static(name: str) -> bytes:
    """A file of the demo page, read once. Not FileResponse: its first use imports anyio's file module
    inside the server's thread, which on Python 3.11 can crash beside an import in another thread."""
    return (STATIC / name).read_bytes()


def create_app(keys: KeysConfig, serving: Path | None = None, landing: Path | None = None, *,
               clock: Callable[[], datetime] = settings.as_of, check_seconds: float = 1.0,
               demo: bool = False, identity_secret: str | None = None) -> FastPath:
    """The API over the serving folder; events land in `landing`. Identity tokens are checked with
    `identity_secret` (default ATTIVA_IDENTITY_SECRET; none: tokens are refused). `demo` adds the
    storefront page at `/` with an in-memory browser key (never stored, gone when the server stops)
    and a sign-in that signs a token for any email: for a demo on this machine only."""
    secret = identity_secret or identity.identity_secret()
    demo_key = None
    if demo:
        demo_key = new_key()
        secret = secret or secrets.token_hex(32)
        keys = KeysConfig([*keys.keys, ApiKey(DEMO_KEY_NAME, hash_key(demo_key), frozenset(ENDPOINTS),
                                              frozenset(BROWSER_FIELDS), 20.0, 60, "browser")], keys.cors_origins)
    api = Api(keys, ServingStore(serving, check_seconds=check_seconds), Path(landing or settings.landing_path()),
              clock, demo_key, secret)
    routes = [
        Route(f"/v1/profiles/{ME}", profile_me, methods=["GET"]),
        Route("/v1/profiles/{id_type}/{value:path}", profile, methods=["GET"]),
        Route(f"/v1/audiences/{{name}}/members/{ME}", membership_me, methods=["GET"]),
        Route("/v1/audiences/{name}/members/{id_type}/{value:path}", membership, methods=["GET"]),
        Route("/v1/events", post_events, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/", demo_page, methods=["GET"]),
        Route("/storefront.js", demo_script, methods=["GET"]),
        Route("/demo/sign-in", demo_sign_in, methods=["POST"]),
        Route("/unsubscribe", unsubscribe.preference_page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe.unsubscribe, methods=["POST"]),
        Route("/twilio/{channel}/status", sms.status_callback, methods=["POST"]),
        Route("/twilio/{channel}/inbound", sms.inbound, methods=["POST"]),
        *messages.ROUTES,
        Route("/meta/leadgen", meta_leads.verify, methods=["GET"]),
        Route("/meta/leadgen", meta_leads.receive, methods=["POST"]),
    ]
    middleware = [Middleware(CORSMiddleware, allow_origins=keys.cors_origins, allow_methods=["GET", "POST"],
                             allow_headers=["Authorization", "X-Api-Key", "Content-Type", "X-Attiva-Identity"],
                             max_age=600)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.api = api
    return FastPath(app, api)


# ---- running ----------------------------------------------------------------------------------

def _server(app: FastPath, host: str, port: int, log_level: str = "info"):
    import uvicorn

    # Access logs off: at thousands of requests a second they would cost more than the lookups.
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                         timeout_graceful_shutdown=1))


def run(app: FastPath, host: str = "127.0.0.1", port: int = settings.SERVE_PORT) -> None:
    """Serve until interrupted."""
    # What exists now (modules, the snapshot's products) lives as long as the server: frozen, it is
    # skipped by the full collections that would otherwise walk it in the middle of requests.
    gc.collect()
    gc.freeze()
    _server(app, host, port).run()


@contextlib.contextmanager
def running_server(app: FastPath, port: int = 0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a background thread; yields its base URL, stops it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _server(app, "127.0.0.1", 0, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="attiva-serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/health", timeout=1):
                    break
            except OSError:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"attiva serve did not start at {base_url}") from None
                time.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()

