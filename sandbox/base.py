"""What every sandboxed destination shares: the request pipeline and its hooks.

Each request to a vendor path goes through the same steps, in the order a real
platform applies them: authentication, connection cap, injected latency, rate
limit, injected request-level fault, the endpoint itself, and an injected hold
of the (already applied) answer. Subclasses only say how their vendor spells
each refusal and what the endpoints do.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from sandbox.auth import same_secret
from sandbox.config import SandboxConfig
from sandbox.faults import FaultInjector, FaultSettings
from sandbox.limits import RollingWindow, WindowCheck
from sandbox.state import StateStore
from sandbox.wire import loads

Handler = Callable[[Request], Awaitable[Response]]


class Refusal(Exception):
    """The vendor refuses the whole request; the destination renders it in its own error shape."""

    def __init__(self, message: str, *, status: int = 400, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trace_id() -> str:
    return uuid.uuid4().hex


class VendorApi:
    """One vendor API served under ``/<name>``, with its state, limits and faults."""

    name: ClassVar[str]

    def __init__(self, config: SandboxConfig, store: StateStore) -> None:
        self.config = config
        self.store = store
        self.secret = config.tokens[self.name]
        self.faults = FaultInjector(self.name, config.faults[self.name])
        self.counters: dict[str, Any] = {"requests": 0, "responses": {}}
        self.configure_limits(config.rate_limits[self.name])
        self.reset_state()

    # ---- what a subclass provides -------------------------------------------------------------

    def reset_state(self) -> None:
        """Forget everything the destination holds."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What the destination holds, as JSON-ready data (live references are fine: it is dumped at once)."""
        raise NotImplementedError

    def load_state(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def credential(self, request: Request) -> str | None:
        """The secret the client presented, or None if it presented none."""
        raise NotImplementedError

    def auth_error(self, missing: bool) -> Response:
        raise NotImplementedError

    def rate_limited(self, check: WindowCheck) -> Response:
        raise NotImplementedError

    def server_error(self) -> Response:
        raise NotImplementedError

    def refuse(self, refusal: Refusal) -> Response:
        raise NotImplementedError

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        return {}

    # ---- limits and faults --------------------------------------------------------------------

    def configure_limits(self, limits: dict[str, Any]) -> None:
        """(Re)build the limiters from ``{"requests", "window_seconds", ...}``; history is dropped."""
        self.limits = dict(limits)
        self.window = RollingWindow(limits.get("requests"), limits.get("window_seconds") or 1.0)

    def configure_faults(self, settings: FaultSettings) -> None:
        self.faults.configure(settings)

    def admit(self) -> WindowCheck:
        """Take a slot in the rate limit, or report the refusal."""
        return self.window.acquire()

    def forced_limit(self) -> WindowCheck:
        """The refusal to report when a rate-limit fault is injected: as if the window frees within a second."""
        window = self.window.window_seconds if self.window.limit is not None else 1.0
        return WindowCheck(False, self.window.limit, 0, min(window, 1.0), window)

    def enter(self, request: Request) -> Response | None:
        """Admit the connection (Mailchimp caps simultaneous ones); a Response refuses it."""
        return None

    def leave(self, request: Request) -> None:
        return None

    # ---- persistence --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state(), "requests": self.counters}

    def restore(self, data: dict[str, Any]) -> None:
        self.reset_state()
        self.load_state(data.get("state") or {})
        counters = data.get("requests") or {}
        self.counters = {"requests": int(counters.get("requests", 0)), "responses": dict(counters.get("responses", {}))}

    def reset(self) -> None:
        """Empty state and counters, fresh rate-limit windows (faults are left as they are)."""
        self.reset_state()
        self.counters = {"requests": 0, "responses": {}}
        self.configure_limits(self.limits)
        self.changed()

    def changed(self) -> None:
        self.store.mark_dirty(self.name)

    # ---- the pipeline -------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> Response | None:
        given = self.credential(request)
        if given is None:
            return self.auth_error(missing=True)
        if not same_secret(given, self.secret):
            return self.auth_error(missing=False)
        return None

    def endpoint(self, handler: Handler) -> Handler:
        """Wrap a vendor endpoint in the shared pipeline and count its answers."""

        async def guarded(request: Request) -> Response:
            self.counters["requests"] += 1
            response = await self._serve(request, handler)
            responses = self.counters["responses"]
            status = str(response.status_code)
            responses[status] = responses.get(status, 0) + 1
            self.changed()
            return response

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    async def _serve(self, request: Request, handler: Handler) -> Response:
        denied = await self.authenticate(request)
        if denied is not None:
            return denied
        refused = self.enter(request)
        if refused is not None:
            return refused
        try:
            settings = self.faults.settings
            if settings.latency_ms:
                await asyncio.sleep(settings.latency_ms / 1000)
            check = self.admit()
            if not check.allowed:
                response = self.rate_limited(check)
            else:
                fault = self.faults.draw()
                if fault == "error":
                    response = self.server_error()
                elif fault == "rate_limit":
                    check = self.forced_limit()
                    response = self.rate_limited(check)
                else:
                    try:
                        response = await handler(request)
                    except Refusal as refusal:
                        response = self.refuse(refusal)
                    if fault == "timeout":
                        # The write is applied; only the answer is late, the ambiguous case retries must survive.
                        await asyncio.sleep(settings.timeout_seconds)
            response.headers.update(self.rate_headers(check))
            return response
        finally:
            self.leave(request)

    async def json_body(self, request: Request) -> Any:
        """The request's JSON body, or a Refusal in the vendor's shape."""
        raw = await request.body()
        if not raw:
            raise Refusal("request body is empty", code="empty_body")
        try:
            return loads(raw)
        except ValueError as exc:
            raise Refusal(f"request body is not valid JSON: {exc}", code="invalid_json") from None


async def post_callback(url: str, data: bytes, headers: dict[str, str]) -> int | str:
    """POST `data` to `url` as a vendor posts a webhook (in a thread: the server's loop keeps serving, so the
    receiver may call back in); the status answered, or why there was none."""

    def post() -> int | str:
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError as exc:
            return f"not delivered: {type(exc).__name__}"

    return await asyncio.get_running_loop().run_in_executor(None, post)
