"""The console's routes: sign in, audiences, customers, campaigns. Pages are rendered on the server
(jinja2), with no script; each reads the warehouse for the few milliseconds it needs (reading.py), and
the few actions (pause, resume, test send) write it as briefly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from activations import settings
from activations.messaging import actions, preview
from activations.report.svg import line_chart
from activations.studio import audiences, campaigns, customers, reading, sessions
from activations.studio.users import User, authenticate, load_users
from activations.warehouse import WarehouseBusy

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["count"] = lambda value: "" if value is None else f"{value:,}"
# No script, no plugin, nothing framed from elsewhere, forms only to this console; a previewed email
# (an iframe's srcdoc, sandboxed) inherits it, so it may show images but never run anything.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; frame-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
EMAIL = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")


@dataclass(frozen=True)
class Studio:
    """Where the console reads from; the users file is read again on every request, so a user added,
    changed or removed with --add-user (or by hand) counts at once."""

    users_path: Path
    warehouse_path: Path
    manifest_path: Path | None = None
    destinations_path: Path | None = None

    def users(self) -> dict[str, User]:
        return load_users(self.users_path)


def create_app(studio: Studio, secret: str | None) -> Starlette:
    """The console; StudioConfigError when it cannot run (no secret, nobody to sign in)."""
    middleware = [sessions.session_middleware(secret)]
    if not studio.users():
        raise sessions.StudioConfigError(
            f"no users in {studio.users_path}: add one with `attiva studio --add-user NAME --role admin`")

    def render(request: Request, template: str, user: User | None, status: int = 200, **context: Any) -> Response:
        response = TEMPLATES.TemplateResponse(request, template, {
            "user": user, "csrf": sessions.csrf_token(request), "csrf_field": sessions.CSRF_FIELD, **context},
            status_code=status)
        response.headers["Content-Security-Policy"] = CSP
        return response

    def signed_in(request: Request, build) -> Response:
        """`build(user, con)` -> (template, context) for a signed-in user, with the warehouse open only
        while it runs; a signed-out visitor goes to the login page and comes back."""
        user = sessions.signed_in(request, studio.users())
        if user is None:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        try:
            with reading.reading(studio.warehouse_path) as con:
                template, context = build(user, con)
                context["freshness"] = reading.freshness(con, studio.warehouse_path).sentence()
        except (reading.NoWarehouse, WarehouseBusy) as exc:
            return render(request, "unavailable.html", user, 503, problem=str(exc))
        return render(request, template, user, 404 if context.get("missing") else 200, **context)

    def page(build):
        """A GET page: `build(request, user, con)`."""
        return lambda request: signed_in(request, lambda user, con: build(request, user, con))

    def login_page(request: Request) -> Response:
        return render(request, "login.html", None, next=_local(request.query_params.get("next")))

    def log_in(request: Request, form: FormData) -> Response:
        user = authenticate(studio.users(), str(form.get("name", "")), str(form.get("password", "")))
        if user is None:
            return render(request, "login.html", None, 401, next=_local(form.get("next")),
                          error="Wrong name or password.")
        sessions.sign_in(request, user)
        return RedirectResponse(_local(form.get("next")), status_code=303)

    def log_out(request: Request, form: FormData) -> Response:
        sessions.sign_out(request)
        return RedirectResponse("/login", status_code=303)

    def audience_list(request, user, con):
        return "audiences.html", {"audiences": audiences.summaries(con, _declared(studio))}

    def audience_detail(request, user, con):
        name = request.path_params["name"]
        found = audiences.summaries(con, _declared(studio), only=name)
        if not found:
            return "audience.html", {"missing": name}
        audience = found[0]
        daily = audience.daily_sizes()
        chart = line_chart(f"{name}: size at each sync run", {name: daily}, x_label="day", y_label="customers",
                           fmt=lambda v: f"{v:,.0f}") if daily else None
        return "audience.html", {"audience": audience, "chart": chart}

    def customer_search(request, user, con):
        return "customers.html", {"matches": None}

    def customer_profile(request, user, con):
        customer_id = request.path_params["customer_id"]
        found = customers.profile(con, customer_id, user.sees_personal_data)
        return "customer.html", {"profile": found, "missing": None if found else customer_id}

    def find(request: Request, form: FormData) -> Response:
        # A POST (with the form's token), so a searched email or phone never lands in a URL or a log.
        who = str(form.get("who", ""))
        return signed_in(request, lambda user, con: (
            "customers.html", {"matches": customers.search(con, who, user.sees_personal_data)}))

    def campaign_list(request, user, con):
        found = campaigns.declared(studio.manifest_path)
        rows, uplift = campaigns.overview(con, found)
        return "campaigns.html", {"campaigns": rows, "uplift_section": uplift, "problem": found.problem}

    def campaign_detail(request, user, con):
        name = request.path_params["campaign"]
        found = campaigns.detail(con, campaigns.declared(studio.manifest_path), name, user.sees_personal_data,
                                 request.query_params.get("occurrence"))
        return "campaign.html", {"page": found, "missing": None if found else name,
                                 "notice": request.session.pop("notice", None)}

    def acting(request: Request, act) -> Response:
        """A marketer's or admin's action on a campaign: `act(user, trigger)` writes (in a short write
        connection of its own) and says what it did; then back to the campaign's page."""
        user = sessions.signed_in(request, studio.users())
        if user is None:
            return RedirectResponse("/login", status_code=303)
        if not user.may_act:
            return HTMLResponse("<!doctype html><title>Refused</title><p>A viewer cannot change campaigns.</p>",
                                status_code=403)
        name = request.path_params["campaign"]
        trigger, broken = campaigns.declared(studio.manifest_path).find(name)
        if trigger is None and broken is None:
            return HTMLResponse("<!doctype html><title>Not found</title><p>No such campaign.</p>", status_code=404)
        try:
            request.session["notice"] = act(user, trigger, name)
        except (reading.NoWarehouse, WarehouseBusy) as exc:
            return render(request, "unavailable.html", user, 503, problem=str(exc))
        except ValueError as exc:  # a wrong address, step or template, a channel that cannot send a test
            request.session["notice"] = f"Nothing sent: {exc}"
        return RedirectResponse(f"/campaigns/{quote(name)}", status_code=303)

    def pausing(pause: bool):
        def handler(request: Request, form: FormData) -> Response:
            def act(user, trigger, name):
                with reading.writing(studio.warehouse_path) as con:
                    changed = actions.set_paused(con, name, pause, user.name)
                done = "paused" if pause else "resumed"
                return f"{name} {done} by {user.name}." if changed else f"{name} was {'already' if pause else 'not'} paused."
            return acting(request, act)
        return handler

    def test_send(request: Request, form: FormData) -> Response:
        def act(user, trigger, name):
            if trigger is None:
                raise ValueError(f"{name} cannot be sent as declared")
            to, template = str(form.get("to", "")).strip(), str(form.get("template", ""))
            step = int(form.get("step", 0)) if str(form.get("step", "")).isdigit() else 0
            if not EMAIL.match(to):
                raise ValueError("that is not an email address")
            if not 0 < step <= len(trigger.steps) or template not in trigger.steps[step - 1].templates:
                raise ValueError(f"step {step} of {name} has no template {template!r}")
            # Rendered and recorded (`sending`) in one short write; sent outside it; its answer recorded after.
            with reading.writing(studio.warehouse_path) as con:
                message = campaigns.test_message(con, trigger, step, template, str(form.get("occurrence", "")))
                if message is None:
                    raise ValueError("the trigger no longer has that occurrence: reload the page")
                message = preview.as_test(message, to)
                actions.record_test_send(con, name, user.name, step=step, template=template,
                                         customer_id=message.customer_id, sent_to=to, message_id=message.message_id)
            try:
                delivery = preview.send_test(trigger, message)
                outcome = ("sent" + (f" (id {delivery.provider_id})" if delivery.provider_id else "") if delivery.ok
                           else f"failed: {delivery.reason}")
            except preview.TestSendRefused as exc:
                outcome = f"not sent: {exc}"
            with reading.writing(studio.warehouse_path) as con:
                actions.settle_test_send(con, message.message_id, outcome)
            return f"Test of step {step} ({template}) to {to}: {outcome}."
        return acting(request, act)

    async def home(request: Request) -> Response:
        return RedirectResponse("/audiences", status_code=303)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", sessions.form(log_in), methods=["POST"]),
        Route("/logout", sessions.form(log_out), methods=["POST"]),
        Route("/", home, methods=["GET"]),
        Route("/audiences", page(audience_list), methods=["GET"]),
        Route("/audiences/{name}", page(audience_detail), methods=["GET"]),
        Route("/customers", page(customer_search), methods=["GET"]),
        Route("/customers", sessions.form(find), methods=["POST"]),
        Route("/customers/{customer_id}", page(customer_profile), methods=["GET"]),
        Route("/campaigns", page(campaign_list), methods=["GET"]),
        Route("/campaigns/{campaign}", page(campaign_detail), methods=["GET"]),
        Route("/campaigns/{campaign}/pause", sessions.form(pausing(True)), methods=["POST"]),
        Route("/campaigns/{campaign}/resume", sessions.form(pausing(False)), methods=["POST"]),
        Route("/campaigns/{campaign}/test-send", sessions.form(test_send), methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.studio = studio
    return app


def _declared(studio: Studio) -> audiences.Declared:
    return audiences.declared(studio.manifest_path, studio.destinations_path)


def _local(target: Any) -> str:
    """Where to go after signing in: a path on this console only (never another site)."""
    target = str(target or "")
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/audiences"


def default_studio() -> Studio:
    """The console on the project's own files (settings)."""
    return Studio(settings.studio_users_path(), settings.warehouse_path())

