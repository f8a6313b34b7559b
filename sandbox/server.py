"""The sandbox server: one Starlette app, a blocking runner and a test-friendly context manager.

Layout: each destination under ``/<type>`` followed by the vendor's own path, e.g.
``POST /hubspot/crm/v3/objects/contacts/batch/upsert``; the control surface under
``/_sandbox``:

- ``GET /_sandbox/health``
- ``GET /_sandbox/state`` (every destination, written to disk first), ``GET /_sandbox/state/{type}``
- ``POST /_sandbox/reset`` (all, or ``{"destination": "<type>"}``)
- ``GET|POST|DELETE /_sandbox/faults`` (read, change, back to the start-up settings)
- ``GET /_sandbox/mail`` (``?to=``, ``?limit=``), ``GET /_sandbox/mail/{message_id}``,
  ``GET|POST|DELETE /_sandbox/mail/faults``: the SMTP server's messages and faults (smtp.py)
- ``POST /_sandbox/mail/events`` (``?limit=`` messages, ``?seed=``): the ESP's Event Webhook batch
  for the mail received since the last call (engagement.py); an empty array when nothing is new
- ``POST /_sandbox/twilio/inbound`` ``{"from", "body", "url", "to"?}``: an SMS reply from a phone, posted
  signed to ``url`` as Twilio posts incoming messages (a STOP opts the number out; twilio.py)
- ``POST /_sandbox/meta/leads`` ``{"url", "lead": {"field_data", "form_id", "ad_id", "page_id", "platform", ...},
  "app_secret"?}``: somebody submits a lead-ad form; the lead is kept (``GET /meta_leads/v{N}/{id}`` reads
  it) and the leadgen webhook is posted to ``url``, signed with the app secret (meta.py MetaLeads)
- ``GET /listening/feeds/news.rss``, ``/listening/feeds/blog.atom``, ``/listening/feeds/broken.xml``: news and
  blog feeds about the demo retailer, for `attiva listen` (feeds.py)
- ``POST /_sandbox/fcm/unregister`` ``{"tokens": [...]}``: the apps behind these device tokens were
  uninstalled; FCM answers UNREGISTERED for them from now on (fcm.py)
"""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from sandbox import feeds
from sandbox.base import VendorApi
from sandbox.brevo import Brevo
from sandbox.config import DESTINATION_TYPES, SandboxConfig, merge_rate_limits, parse_fault_spec
from sandbox.engagement import new_events
from sandbox.fcm import Fcm
from sandbox.google import Google, GoogleConversions
from sandbox.google_merchant import GoogleMerchant
from sandbox.hubspot import HubSpot
from sandbox.mailchimp import Mailchimp
from sandbox.meta import Meta, MetaConversions, MetaLeads
from sandbox.meta_catalog import MetaCatalog
from sandbox.salesforce import Salesforce
from sandbox.sendgrid import SendGrid
from sandbox.smtp import MailServer, MailStore, message_view
from sandbox.state import StateStore
from sandbox.twilio import Twilio
from sandbox.webhook import Webhook
from sandbox.wire import JSONBody, loads

VENDOR_APIS: dict[str, type[VendorApi]] = {
    cls.name: cls for cls in (HubSpot, Salesforce, Meta, Google, Mailchimp, SendGrid, Brevo, Webhook, Twilio,
                              MetaConversions, Fcm, MetaLeads, GoogleConversions, MetaCatalog, GoogleMerchant)
}
assert tuple(VENDOR_APIS) == DESTINATION_TYPES


class Sandbox:
    """The destinations, their state store and the control operations over them."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._initial_faults = dict(config.faults)
        self._initial_rate_limits = copy.deepcopy(config.rate_limits)
        self.store = StateStore(config.state_dir, interval=config.persist_interval)
        self.destinations: dict[str, VendorApi] = {}
        for name, cls in VENDOR_APIS.items():
            destination = cls(config, self.store)
            self.destinations[name] = destination
            self.store.register(destination)
        self.store.load_all()
        # Messages on disk are readable even when the mail server runs elsewhere (running_smtp).
        self.mail = MailStore(config.state_dir / "smtp")
        self.mail_server = MailServer(config.smtp, self.mail) if config.smtp_port is not None else None
        self.events_lock = threading.Lock()  # one engagement batch at a time: each message is reported once

    def view(self, name: str) -> dict[str, Any]:
        destination = self.destinations[name]
        return {**destination.state(), "requests": destination.counters}

    def faults_view(self) -> dict[str, Any]:
        return {
            name: {**self.config.faults[name].as_dict(), "rate_limits": self.config.rate_limits[name]}
            for name in DESTINATION_TYPES
        }

    def apply_faults(self, spec: dict[str, Any]) -> None:
        targets, settings, limits = parse_fault_spec(spec, self.config.faults)
        merged = merge_rate_limits(self.config.rate_limits, limits) if limits else self.config.rate_limits
        # Validated in full before anything changes.
        self.config.faults.update(settings)
        for name in targets:
            self.destinations[name].configure_faults(settings[name])
        if limits:
            self.config.rate_limits = merged
            for name in limits:
                self.destinations[name].configure_limits(merged[name])

    def restore_start_faults(self) -> None:
        self.config.faults = dict(self._initial_faults)
        self.config.rate_limits = copy.deepcopy(self._initial_rate_limits)
        for name, destination in self.destinations.items():
            destination.configure_faults(self.config.faults[name])
            destination.configure_limits(self.config.rate_limits[name])
        if self.mail_server is not None:
            self.mail_server.restore_start_faults()

    def smtp_view(self) -> dict[str, Any] | None:
        return self.mail_server.view() if self.mail_server is not None else None


async def _control_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    body = loads(raw)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def _control_routes(sandbox: Sandbox) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONBody({"ok": True, "destinations": list(DESTINATION_TYPES), "smtp": sandbox.smtp_view()})

    async def state(request: Request) -> Response:
        sandbox.store.flush()
        return JSONBody({name: sandbox.view(name) for name in DESTINATION_TYPES})

    async def state_of(request: Request) -> Response:
        name = request.path_params["destination"]
        if name not in sandbox.destinations:
            return JSONBody({"error": f"unknown destination {name!r}"}, status_code=404)
        sandbox.store.flush()
        return JSONBody(sandbox.view(name))

    async def reset(request: Request) -> Response:
        try:
            body = await _control_body(request)
        except ValueError as exc:
            return JSONBody({"error": str(exc)}, status_code=400)
        name = body.get("destination") or request.query_params.get("destination") or "*"
        if name != "*" and name != "mail" and name not in sandbox.destinations:
            return JSONBody({"error": f"unknown destination {name!r}"}, status_code=400)
        names = [*DESTINATION_TYPES, "mail"] if name == "*" else [name]
        for n in names:
            if n == "mail":
                sandbox.mail.reset()
            else:
                sandbox.destinations[n].reset()
        sandbox.store.flush()
        return JSONBody({"reset": names})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                sandbox.apply_faults(await _control_body(request))
            except (ValueError, TypeError) as exc:
                return JSONBody({"error": str(exc)}, status_code=400)
        elif request.method == "DELETE":
            sandbox.restore_start_faults()
        return JSONBody(sandbox.faults_view())

    async def mail(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return JSONBody({"error": "limit must be an integer"}, status_code=400)
        count, messages = sandbox.mail.messages(request.query_params.get("to"), max(0, min(limit, 10_000)))
        return JSONBody(
            {
                "count": count,
                "total": sandbox.mail.total,
                "smtp": sandbox.smtp_view(),
                "counters": sandbox.mail.counters,
                "messages": messages,
            }
        )

    async def mail_message(request: Request) -> Response:
        record = sandbox.mail.get(request.path_params["message_id"])
        if record is None:
            return JSONBody({"error": "no such message"}, status_code=404)
        return JSONBody(message_view(record))

    async def mail_events(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20000"))
            seed = int(request.query_params.get("seed", "1"))
        except ValueError:
            return JSONBody({"error": "limit and seed must be integers"}, status_code=400)

        def batch() -> list[dict[str, Any]]:
            sandbox.store.flush()  # SendGrid's mail send is read from its state file
            with sandbox.events_lock:
                return new_events(sandbox.config.state_dir, seed=seed, limit=max(1, limit))

        return JSONBody(await run_in_threadpool(batch))  # file reads: off the event loop

    async def mail_faults(request: Request) -> Response:
        server = sandbox.mail_server
        if server is None:
            return JSONBody({"error": "the SMTP server is not running in this sandbox"}, status_code=404)
        if request.method == "POST":
            try:
                server.configure_faults(server.faults.updated(await _control_body(request)))
            except (ValueError, TypeError) as exc:
                return JSONBody({"error": str(exc)}, status_code=400)
        elif request.method == "DELETE":
            server.restore_start_faults()
        return JSONBody(server.faults.as_dict())

    async def twilio_inbound(request: Request) -> Response:
        try:
            body = await _control_body(request)
        except ValueError as exc:
            return JSONBody({"error": str(exc)}, status_code=400)
        if not all(isinstance(body.get(k), str) and body.get(k) for k in ("from", "body", "url")):
            return JSONBody({"error": "expected {\"from\": \"+39...\", \"body\": \"STOP\", \"url\": \"http...\"}"},
                            status_code=400)
        twilio = sandbox.destinations["twilio"]
        answered = await twilio.inbound(body["from"], body["body"], body["url"], body.get("to"))
        return JSONBody({"posted_to": body["url"], "answered": answered, "opted_out": body["from"] in twilio.opted_out})

    async def fcm_unregister(request: Request) -> Response:
        try:
            body = await _control_body(request)
        except ValueError as exc:
            return JSONBody({"error": str(exc)}, status_code=400)
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            return JSONBody({"error": "expected {\"tokens\": [\"<device token>\", ...]}"}, status_code=400)
        sandbox.destinations["fcm"].unregister(tokens)
        return JSONBody({"unregistered": len(tokens)})

    async def meta_lead(request: Request) -> Response:
        try:
            body = await _control_body(request)
        except ValueError as exc:
            return JSONBody({"error": str(exc)}, status_code=400)
        if not (isinstance(body.get("url"), str) and body["url"] and isinstance(body.get("lead"), dict)):
            return JSONBody({"error": "expected {\"url\": \"http...\", \"lead\": {\"field_data\": [...], ...}}"},
                            status_code=400)
        secret = body.get("app_secret") or sandbox.config.meta_app_secret
        return JSONBody(await sandbox.destinations["meta_leads"].submit(body["lead"], body["url"], str(secret)))

    return [
        Route("/health", health, methods=["GET"]),
        Route("/twilio/inbound", twilio_inbound, methods=["POST"]),
        Route("/meta/leads", meta_lead, methods=["POST"]),
        Route("/fcm/unregister", fcm_unregister, methods=["POST"]),
        Route("/mail", mail, methods=["GET"]),
        Route("/mail/faults", mail_faults, methods=["GET", "POST", "DELETE"]),
        Route("/mail/events", mail_events, methods=["POST"]),
        Route("/mail/{message_id:path}", mail_message, methods=["GET"]),
        Route("/state", state, methods=["GET"]),
        Route("/state/{destination}", state_of, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
    ]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox app: every destination mounted under ``/<type>``, state loaded from ``config.state_dir``."""
    sandbox = Sandbox(config or SandboxConfig.build())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sandbox.store.start()
        if sandbox.mail_server is not None:
            await sandbox.mail_server.start(sandbox.config.smtp_host, sandbox.config.smtp_port or 0)
        try:
            yield
        finally:
            if sandbox.mail_server is not None:
                await sandbox.mail_server.stop()
            sandbox.mail.close()
            await sandbox.store.stop()

    routes = [Mount("/_sandbox", routes=_control_routes(sandbox))]
    routes += [Mount(f"/{name}", routes=d.routes()) for name, d in sandbox.destinations.items()]
    routes.append(Mount("/listening", routes=feeds.routes()))  # news and blog feeds for `attiva listen`
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app


def _server(app: Starlette, log_level: str, host: str = "127.0.0.1", port: int = 0) -> uvicorn.Server:
    # Access logs off: at thousands of requests a second they would cost more than the endpoints.
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    return uvicorn.Server(config)


def run(
    host: str = "127.0.0.1",
    port: int = 8765,
    state_dir: Path | str | None = None,
    *,
    log_level: str = "info",
    smtp_port: int | None = None,
    **config: Any,
) -> None:
    """Serve the sandbox until interrupted (``attiva sandbox``).

    ``config`` takes the keyword arguments of :meth:`SandboxConfig.build`: ``tokens``,
    ``rate_limits``, ``faults``, ``sendgrid_import_seconds``, ``persist_interval``, ``webhook_max_rows``,
    ``smtp`` (mail server options). ``smtp_port`` also serves SMTP on ``host`` (None or 0: no mail server).
    """
    if smtp_port:
        config = {**config, "smtp_port": smtp_port, "smtp_host": host}
    app = create_app(SandboxConfig.build(state_dir, **config))
    _server(app, log_level, host, port).run()


class SandboxURL(str):
    """The sandbox's base URL, plus where its mail server listens (``smtp``: ``(host, port)`` or None)."""

    smtp: tuple[str, int] | None = None

    @property
    def smtp_port(self) -> int | None:
        return self.smtp[1] if self.smtp else None

    @property
    def events_url(self) -> str:
        """The ESP event feed the feedback step asks (ATTIVA_ESP_EVENTS_URL when running against the sandbox)."""
        return events_url(self)


def events_url(base: str) -> str:
    """The event feed of the sandbox at `base`: its mail server's Event Webhook batches."""
    return f"{base.rstrip('/')}/_sandbox/mail/events"


@contextlib.contextmanager
def running_sandbox(
    state_dir: Path, port: int = 0, *, smtp_port: int | None = None, **config: Any
) -> Iterator[SandboxURL]:
    """Run the sandbox on 127.0.0.1 in a background thread; yields its base URL, stops it on exit.

    ``port=0`` picks a free port. ``smtp_port`` starts the mail server too (None: not started,
    0: a free port); the yielded URL's ``.smtp`` is then its ``(host, port)``, also reported by
    ``GET /_sandbox/health``. ``config`` is as for :func:`run`.
    """
    app = create_app(SandboxConfig.build(state_dir, smtp_port=smtp_port, **config))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="attiva-sandbox", daemon=True)
    thread.start()
    try:
        _wait_until_answering(base_url, thread)
        url = SandboxURL(base_url)
        mail_server = app.state.sandbox.mail_server
        url.smtp = mail_server.address if mail_server is not None else None
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _wait_until_answering(base_url: str, thread: threading.Thread, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped during start-up")
        try:
            with urllib.request.urlopen(f"{base_url}/_sandbox/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sandbox did not answer at {base_url} within {timeout} s")
        time.sleep(0.02)
