"""The sandbox server: one Starlette app, a blocking runner and a test-friendly context manager.

Layout: each destination under ``/<type>`` followed by the vendor's own path, e.g.
``POST /hubspot/crm/v3/objects/contacts/batch/upsert``; the control surface under
``/_sandbox``:

- ``GET /_sandbox/health``
- ``GET /_sandbox/state`` (every destination, written to disk first), ``GET /_sandbox/state/{type}``
- ``POST /_sandbox/reset`` (all, or ``{"destination": "<type>"}``)
- ``GET|POST|DELETE /_sandbox/faults`` (read, change, back to the start-up settings)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from activations.sandbox.base import Destination
from activations.sandbox.brevo import Brevo
from activations.sandbox.config import DESTINATION_TYPES, SandboxConfig, merge_rate_limits, parse_fault_spec
from activations.sandbox.faults import FAULT_FIELDS
from activations.sandbox.google import Google
from activations.sandbox.hubspot import HubSpot
from activations.sandbox.mailchimp import Mailchimp
from activations.sandbox.meta import Meta
from activations.sandbox.salesforce import Salesforce
from activations.sandbox.sendgrid import SendGrid
from activations.sandbox.state import StateStore
from activations.sandbox.webhook import Webhook
from activations.sandbox.wire import JSONBody, loads

DESTINATION_CLASSES: dict[str, type[Destination]] = {
    cls.name: cls for cls in (HubSpot, Salesforce, Meta, Google, Mailchimp, SendGrid, Brevo, Webhook)
}
assert tuple(DESTINATION_CLASSES) == DESTINATION_TYPES


class Sandbox:
    """The destinations, their state store and the control operations over them."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._initial_faults = dict(config.faults)
        self._initial_rate_limits = copy.deepcopy(config.rate_limits)
        self.store = StateStore(config.state_dir, interval=config.persist_interval)
        self.destinations: dict[str, Destination] = {}
        for name, cls in DESTINATION_CLASSES.items():
            destination = cls(config, self.store)
            self.destinations[name] = destination
            self.store.register(destination)
        self.store.load_all()

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
        return JSONBody({"ok": True, "destinations": list(DESTINATION_TYPES)})

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
        if name != "*" and name not in sandbox.destinations:
            return JSONBody({"error": f"unknown destination {name!r}"}, status_code=400)
        names = list(DESTINATION_TYPES) if name == "*" else [name]
        for n in names:
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

    return [
        Route("/health", health, methods=["GET"]),
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
        try:
            yield
        finally:
            await sandbox.store.stop()

    routes = [Mount("/_sandbox", routes=_control_routes(sandbox))]
    routes += [Mount(f"/{name}", routes=d.routes()) for name, d in sandbox.destinations.items()]
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
    **config: Any,
) -> None:
    """Serve the sandbox until interrupted (``attiva sandbox``).

    ``config`` takes the keyword arguments of :meth:`SandboxConfig.build`: ``tokens``,
    ``rate_limits``, ``faults``, ``sendgrid_import_seconds``, ``persist_interval``, ``webhook_max_rows``.
    """
    app = create_app(SandboxConfig.build(state_dir, **config))
    _server(app, log_level, host, port).run()


@contextlib.contextmanager
def running_sandbox(state_dir: Path, port: int = 0, **config: Any) -> Iterator[str]:
    """Run the sandbox on 127.0.0.1 in a background thread; yields its base URL, stops it on exit.

    ``port=0`` picks a free port. ``config`` is as for :func:`run`.
    """
    app = create_app(SandboxConfig.build(state_dir, **config))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="attiva-sandbox", daemon=True)
    thread.start()
    try:
        _wait_until_answering(base_url, thread)
        yield base_url
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


# ---- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``attiva sandbox`` flags; :func:`run_from_args` turns them into a :func:`run` call."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    default_port = int(os.environ.get("ATTIVA_SANDBOX_PORT") or 8765)
    parser.add_argument("--port", type=int, default=default_port, help="port (default ATTIVA_SANDBOX_PORT or 8765)")
    parser.add_argument(
        "--state", type=Path, default=None, help="state folder (default ATTIVA_SANDBOX_STATE or data/sandbox)"
    )
    parser.add_argument(
        "--fault-destination", default="*", help="destination the fault flags apply to (default '*': all)"
    )
    parser.add_argument("--error-rate", type=float, help="share of requests answered with the vendor's 5xx")
    parser.add_argument("--rate-limit-rate", type=float, help="share answered with the platform's rate-limit signal")
    parser.add_argument("--timeout-rate", type=float, help="share whose answer is held for --timeout-seconds")
    parser.add_argument("--timeout-seconds", type=float, help="how long a held answer waits (default 10)")
    parser.add_argument("--latency-ms", type=float, help="latency added to every request")
    parser.add_argument("--row-reject-rate", type=float, help="share of rows rejected in the vendor's per-row shape")
    parser.add_argument("--seed", type=int, help="fault seed (default 1)")
    parser.add_argument("--faults", type=json.loads, help="JSON fault spec(s), as POST /_sandbox/faults takes")
    parser.add_argument("--rate-limits", type=json.loads, help='JSON overrides, e.g. {"hubspot": {"requests": 10}}')
    parser.add_argument("--sendgrid-import-seconds", type=float, help="how long SendGrid import jobs stay pending")
    parser.add_argument("--webhook-unsigned", action="store_true",
                        help="let the webhook accept posts without a signature (tools that cannot sign)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")


def run_from_args(args: argparse.Namespace) -> int:
    """Start :func:`run` from the flags of :func:`add_arguments`; returns an exit status."""
    specs: list[dict[str, Any]] = []
    if args.faults:
        specs += [args.faults] if isinstance(args.faults, dict) else list(args.faults)
    flags = {
        name: getattr(args, name)
        for name in FAULT_FIELDS
        if getattr(args, name, None) is not None
    }
    if flags:
        specs.append({"destination": args.fault_destination, **flags})
    options: dict[str, Any] = {}
    if args.sendgrid_import_seconds is not None:
        options["sendgrid_import_seconds"] = args.sendgrid_import_seconds
    if getattr(args, "webhook_unsigned", False):
        options["webhook_require_signature"] = False
    run(
        host=args.host,
        port=args.port,
        state_dir=args.state,
        log_level=args.log_level,
        faults=specs or None,
        rate_limits=args.rate_limits,
        **options,
    )
    return 0
