"""Signing in and out, and the guard on every form.

A session is a cookie signed with ATTIVA_STUDIO_SECRET (starlette's SessionMiddleware, itsdangerous)
holding the user's name and a random CSRF token. Every POST handler is registered through `form`,
which refuses with 403 a form whose hidden `csrf_token` is missing or is not the session's: a page
on another site can make the browser post here, but cannot read the token to put in it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from activations.studio.users import User

COOKIE = "attiva_studio"
CSRF_FIELD = "csrf_token"
SESSION_HOURS = 8
MIN_SECRET = 16

FormHandler = Callable[[Request, FormData], Response]


class StudioConfigError(ValueError):
    """The console cannot start as configured (no secret, no users): what to do about it."""


def session_middleware(secret: str | None) -> Middleware:
    """Signed-cookie sessions; refuses a missing or short secret, since anyone knowing it can sign in as anyone."""
    if not secret or len(secret) < MIN_SECRET:
        raise StudioConfigError(
            f"ATTIVA_STUDIO_SECRET is {'too short' if secret else 'not set'}: it signs the console's session "
            f"cookies, so set it to a random value of at least {MIN_SECRET} characters, e.g. "
            "export ATTIVA_STUDIO_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    # same_site strict: the cookie never rides on a request another site starts, a second line behind the token.
    return Middleware(SessionMiddleware, secret_key=secret, session_cookie=COOKIE, max_age=SESSION_HOURS * 3600,
                      same_site="strict", https_only=False)


def csrf_token(request: Request) -> str:
    """This session's form token, made on first use (a signed-out visitor gets one for the login form)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def signed_in(request: Request, users: dict[str, User]) -> User | None:
    """The signed-in user, as the users file has them now (a removed user is signed out)."""
    return users.get(request.session.get("user", ""))


def sign_in(request: Request, user: User) -> None:
    """A fresh session for `user`: nothing from before signing in survives, not even the token."""
    request.session.clear()
    request.session.update({"user": user.name, "csrf": secrets.token_urlsafe(32)})


def sign_out(request: Request) -> None:
    request.session.clear()


def form(handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint that runs `handler(request, form)` (in a thread: it may read the warehouse)
    only when the form carries this session's CSRF token; 403 otherwise."""
    async def endpoint(request: Request) -> Response:
        data = await request.form()
        sent, expected = str(data.get(CSRF_FIELD, "")), request.session.get("csrf", "")
        if not (sent and expected and hmac.compare_digest(sent, expected)):
            return HTMLResponse("<!doctype html><title>Refused</title><p>This form was not sent from a page of this "
                                "console (its CSRF token is missing or stale). Go back, reload the page and try "
                                "again.</p>", status_code=403)
        return await run_in_threadpool(handler, request, data)
    endpoint.csrf_checked = True  # tests/studio checks every POST route is one of these
    return endpoint
