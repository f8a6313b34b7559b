"""The console's routes: sign in, audiences, the audience builder, customers, campaigns. Pages are
rendered on the server (jinja2), with no script but the builder's live size estimate; each reads the
warehouse for the few milliseconds it needs (reading.py), and the few actions (pause, resume, test
send) write it as briefly. Saving a built audience writes git objects, never the warehouse."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from activations import settings
from activations.messaging import actions, preview
from activations.report.svg import line_chart
from activations.serve.normalize import phone_e164
from activations.studio import (
    audiences,
    builder,
    campaigns,
    customers,
    erasing,
    members,
    reading,
    retries,
    saving,
    sessions,
)
from activations.studio.throttle import LoginThrottle
from activations.studio.users import User, authenticate, load_users
from activations.warehouse import WarehouseBusy

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["count"] = lambda value: "" if value is None else f"{value:,}"
# No script, no plugin, nothing framed from elsewhere, forms only to this console; a previewed email
# (an iframe's srcdoc, sandboxed) inherits it, so it may show images but never run anything.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; frame-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# The builder's page alone runs a script (this console's own file) that asks this console for the size.
BUILDER_CSP = CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';")
STATIC = Path(__file__).parent / "static"
REFUSED = "<!doctype html><title>Refused</title><p>{}</p>"
EMAIL = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")


@dataclass(frozen=True)
class Studio:
    """Where the console reads from; the users file is read again on every request, so a user added,
    changed or removed with --add-user (or by hand) counts at once."""

    users_path: Path
    warehouse_path: Path
    manifest_path: Path | None = None
    destinations_path: Path | None = None
    # The project whose dbt models the builder saves, on a branch of its git repository (default: this one).
    project_root: Path | None = None

    def project(self) -> Path:
        return Path(self.project_root or settings.project_root())

    def users(self) -> dict[str, User]:
        return load_users(self.users_path)


def create_app(studio: Studio, secret: str | None) -> Starlette:
    """The console; StudioConfigError when it cannot run (no secret, nobody to sign in)."""
    middleware = [sessions.session_middleware(secret)]
    throttle = LoginThrottle()
    if not studio.users():
        raise sessions.StudioConfigError(
            f"no users in {studio.users_path}: add one with `attiva studio --add-user NAME --role admin`")

    def render(request: Request, template: str, user: User | None, status: int = 200, **context: Any) -> Response:
        response = TEMPLATES.TemplateResponse(request, template, {
            "user": user, "csrf": sessions.csrf_token(request), "csrf_field": sessions.CSRF_FIELD, **context},
            status_code=status)
        response.headers["Content-Security-Policy"] = BUILDER_CSP if template == "builder.html" else CSP
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
        return render(request, template, user, context.pop("status", 404 if context.get("missing") else 200), **context)

    def permitted(request: Request, may, refusal: str) -> tuple[User | None, Response | None]:
        """(the signed-in user, None) if `may(user)`; else (None, the answer): the login page, or 403 saying `refusal`."""
        user = sessions.signed_in(request, studio.users())
        if user is None:
            return None, RedirectResponse("/login", status_code=303)
        if not may(user):
            return None, HTMLResponse(REFUSED.format(refusal), status_code=403)
        return user, None

    def page(build):
        """A GET page: `build(request, user, con)`."""
        return lambda request: signed_in(request, lambda user, con: build(request, user, con))

    def login_page(request: Request) -> Response:
        return render(request, "login.html", None, next=_local(request.query_params.get("next")))

    def log_in(request: Request, form: FormData) -> Response:
        name = str(form.get("name", ""))
        if (wait := throttle.wait(name)) > 0:
            response = render(request, "login.html", None, 429, next=_local(form.get("next")),
                              error=f"Too many failed sign-ins as this name: try again in {math.ceil(wait / 60)} minute(s).")
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        user = authenticate(studio.users(), name, str(form.get("password", "")))
        if user is None:
            throttle.failed(name)
            return render(request, "login.html", None, 401, next=_local(form.get("next")),
                          error="Wrong name or password.")
        throttle.succeeded(name)
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
        chart = line_chart(f"{name}: size over time", {name: daily}, x_label="day", y_label="customers",
                           fmt=lambda v: f"{v:,.0f}", whole=True) if daily else None
        personal = user.sees_personal_data
        return "audience.html", {
            "audience": audience, "chart": chart, "notice": request.session.pop("notice", None),
            "sample": members.sample(con, name, personal, request.query_params.get("consent")),
            "overlaps": members.overlaps(con, name),
            "rejects": retries.rejects(con, [s.name for s in audience.syncs if not s.broken], personal)}

    def retry(request: Request, form: FormData) -> Response:
        """A marketer's or admin's retry of one sync's rejected rows: `attiva retry SYNC` in its own process."""
        user, refused = permitted(request, lambda u: u.may_act, "A viewer cannot retry a sync.")
        if refused:
            return refused
        name, sync = request.path_params["name"], str(form.get("sync", ""))
        declared = [s for s in _declared(studio).syncs.get(name, []) if s.name == sync]
        if not declared:
            return HTMLResponse(REFUSED.format(escape(f"{name} has no sync {sync}.")), status_code=404)
        if declared[0].broken:
            request.session["notice"] = f"Not retried: {sync} cannot run: {declared[0].broken}"
        else:
            try:
                retries.start(studio.warehouse_path, sync, user.name, settings.data_dir() / "studio",
                              _engine_env(studio))
                request.session["notice"] = (f"Retry of {sync} started by {user.name}: its run appears in the "
                                             "table when it ends (reload).")
            except retries.RetryRefused as exc:
                request.session["notice"] = f"Not retried: {exc}"
            except (reading.NoWarehouse, WarehouseBusy) as exc:
                return render(request, "unavailable.html", user, 503, problem=str(exc))
        return RedirectResponse(f"/audiences/{quote(name)}", status_code=303)

    def customer_search(request, user, con):
        return "customers.html", {"matches": None}

    def customer_profile(request, user, con):
        customer_id = request.path_params["customer_id"]
        found = customers.profile(con, customer_id, user.sees_personal_data)
        return "customer.html", {"profile": found, "missing": None if found else customer_id,
                                 "erased_at": None if found else erasing.erased_at(con, customer_id)}

    def erase(request: Request, form: FormData) -> Response:
        """An admin's erasure of the customer, confirmed by typing their id again: `attiva forget` itself."""
        user, refused = permitted(request, lambda user: user.may_erase, "Only an admin can erase a customer.")
        if refused:
            return refused
        customer_id = request.path_params["customer_id"]
        if str(form.get("confirm", "")).strip() != customer_id:
            def unconfirmed(user, con):
                found = customers.profile(con, customer_id, user.sees_personal_data)
                return "customer.html", {"profile": found, "missing": None if found else customer_id, "status": 409,
                                         "erase_error": f"Nothing erased: the id typed is not {customer_id}."}
            return signed_in(request, unconfirmed)
        try:
            with reading.reading(studio.warehouse_path) as con:
                if not customers.exists(con, customer_id):
                    return HTMLResponse(REFUSED.format("No such customer."), status_code=404)
            # Who asked, recorded before it runs; the command takes the write lock itself, as in a terminal.
            with reading.writing(studio.warehouse_path) as con:
                action_id = erasing.record_request(con, user.name)
        except (reading.NoWarehouse, WarehouseBusy) as exc:
            return render(request, "unavailable.html", user, 503, problem=f"Nothing erased: {exc}")
        erasure = erasing.run_forget(studio.warehouse_path, customer_id, studio.destinations_path)
        unrecorded = None
        try:
            with reading.writing(studio.warehouse_path) as con:
                erasing.record_outcome(con, action_id, erasure)
        except WarehouseBusy as exc:
            unrecorded = f"The outcome could not be recorded in activation.studio_actions: {exc}"
        return render(request, "erased.html", user, customer_id=customer_id, erasure=erasure, unrecorded=unrecorded)

    def find(request: Request, form: FormData) -> Response:
        # A POST (with the form's token), so a searched email or phone never lands in a URL or a log.
        who = str(form.get("who", ""))
        return signed_in(request, lambda user, con: (
            "customers.html", {"matches": customers.search(con, who, user.sees_personal_data)}))

    def campaign_list(request, user, con):
        found = campaigns.declared(studio.manifest_path)
        source = campaigns.measured_from(con, live=request.query_params.get("live") == "1")
        rows, uplift = campaigns.overview(con, found, source)
        return "campaigns.html", {"campaigns": rows, "uplift_section": uplift, "problem": found.problem,
                                  "measured": source}

    def campaign_detail(request, user, con):
        name = request.path_params["campaign"]
        source = campaigns.measured_from(con, live=request.query_params.get("live") == "1")
        found = campaigns.detail(con, campaigns.declared(studio.manifest_path), name, user.sees_personal_data,
                                 request.query_params.get("occurrence"), source=source)
        return "campaign.html", {"page": found, "missing": None if found else name, "measured": source,
                                 "notice": request.session.pop("notice", None)}

    def acting(request: Request, act) -> Response:
        """A marketer's or admin's action on a campaign: `act(user, trigger)` writes (in a short write
        connection of its own) and says what it did; then back to the campaign's page."""
        user, refused = permitted(request, lambda user: user.may_act, "A viewer cannot change campaigns.")
        if refused:
            return refused
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
            recipient = preview.test_recipient(trigger, step)  # a journey's step may go by SMS, another by email
            if recipient == "phone":
                to = phone_e164(to) or ""
                if not to:
                    raise ValueError("that is not a phone number (write it with its country code, +39 333 …)")
            elif not EMAIL.match(to):
                raise ValueError("that is not an email address")
            if not 0 < step <= len(trigger.steps) or template not in trigger.steps[step - 1].templates:
                raise ValueError(f"step {step} of {name} has no template {template!r}")
            # Rendered and recorded (`sending`) in one short write; sent outside it; its answer recorded after.
            with reading.writing(studio.warehouse_path) as con:
                message = campaigns.test_message(con, trigger, step, template, str(form.get("occurrence", "")))
                if message is None:
                    raise ValueError("the trigger no longer has that occurrence: reload the page")
                message = preview.as_test(message, to, recipient or "email")
                actions.record_test_send(con, name, user.name, step=step, template=template,
                                         customer_id=message.customer_id, sent_to=to, message_id=message.message_id)
            try:
                delivery = preview.send_test(trigger, message, step)
                outcome = ("sent" + (f" (id {delivery.provider_id})" if delivery.provider_id else "") if delivery.ok
                           else f"failed: {delivery.reason}")
            except preview.TestSendRefused as exc:
                outcome = f"not sent: {exc}"
            with reading.writing(studio.warehouse_path) as con:
                actions.settle_test_send(con, message.message_id, outcome)
            return f"Test of step {step} ({template}) to {to}: {outcome}."
        return acting(request, act)

    def builder_form(request: Request, form: FormData | None, error: str | None = None, status: int = 200,
                     check: bool = False) -> Response:
        """The builder for a marketer or admin (403 for a viewer), filled in as `form` was sent, with each
        invalid condition's reason, the size when `check`, and `error` (why saving was refused)."""
        user = sessions.signed_in(request, studio.users())
        if user is not None and not user.may_act:
            return HTMLResponse(REFUSED.format("A viewer cannot build audiences."), status_code=403)
        sent = dict(form or {})

        def build(user, con):
            found = builder.catalog(con, studio.project())
            conditions = builder.from_form(sent)
            as_of = _as_of(con, studio)
            count, checked = builder.estimate(con, conditions, found, as_of) if check else (None, None)
            by_row = {c.row: c for c in conditions}
            rows = [{"condition": by_row.get(i), "problem": checked.problems.get(i) if checked else None}
                    for i in range(min(builder.MAX_CONDITIONS, max(4, max(by_row, default=-1) + 3)))]
            return "builder.html", {
                "catalog": found, "rows": rows, "operators": builder.NUMBER_OPS + ("is true", "is false"),
                "estimate": count, "estimate_as_of": f"as of {reading.utc_text(as_of)}" if count is not None
                else (checked.error or "") if checked else "",
                "form": {key: str(sent.get(key, "")) for key in
                         ("name", "description", "sync_destination", "sync_mode", "sync_consent")},
                "destinations": _destination_names(studio), "modes": MODES_OFFERED,
                "sync_consents": saving.SYNC_CONSENTS, "groups": builder.GROUPS,
                "operators_by_kind": builder.OPERATORS, "predicted_operators": builder.PREDICTED_OPS, "error": error, "status": status}
        return signed_in(request, build)

    def builder_page(request: Request) -> Response:
        return builder_form(request, None)

    def builder_check(request: Request, form: FormData) -> Response:
        return builder_form(request, form, check=True)

    def builder_estimate(request: Request, form: FormData) -> Response:
        """The live size: {count, as_of, problems: {row: reason}} as JSON."""
        user = sessions.signed_in(request, studio.users())
        if user is None or not user.may_act:
            return JSONResponse({"error": "sign in as a marketer or admin"}, status_code=403)
        try:
            with reading.reading(studio.warehouse_path) as con:
                as_of = _as_of(con, studio)
                count, checked = builder.estimate(con, builder.from_form(form), builder.catalog(con, studio.project()),
                                                  as_of)
        except (reading.NoWarehouse, WarehouseBusy) as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"count": count, "as_of": f"as of {reading.utc_text(as_of)}", "error": checked.error,
                             "problems": {str(row): problem for row, problem in checked.problems.items()}})

    def builder_save(request: Request, form: FormData) -> Response:
        """Write the audience on a new branch and show it; or the builder again, as sent, saying why not."""
        user, refused = permitted(request, lambda user: user.may_act, "A viewer cannot save audiences.")
        if refused:
            return refused
        try:
            with reading.reading(studio.warehouse_path) as con:
                found = builder.catalog(con, studio.project())
            name = str(form.get("name", "")).strip()
            _save(studio, found, form, name, user.name)
        except (reading.NoWarehouse, WarehouseBusy) as exc:
            return render(request, "unavailable.html", user, 503, problem=str(exc))
        except (saving.Refused, builder.Invalid) as exc:
            return builder_form(request, form, f"Not saved: {exc}", 409, check=True)
        return RedirectResponse(f"/builder/saved/{quote(name)}", status_code=303)

    def builder_saved(request, user, con):
        if not user.may_act:
            return "builder_saved.html", {"missing": "(a viewer cannot see saved audiences)", "status": 403}
        name = request.path_params["name"]
        shown = saving.show(studio.project(), name)
        if shown is None:
            return "builder_saved.html", {"missing": name}
        commit = shown.split("\n", 1)[0].removeprefix("commit ").strip()
        return "builder_saved.html", {"name": name, "branch": saving.BRANCH_PREFIX + name, "commit": commit,
                                      "shown": shown}

    async def builder_script(request: Request) -> Response:
        return FileResponse(STATIC / "builder.js", media_type="text/javascript")

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
        Route("/audiences/{name}/retry", sessions.form(retry), methods=["POST"]),
        Route("/builder", builder_page, methods=["GET"]),
        Route("/builder", sessions.form(builder_check), methods=["POST"]),
        Route("/builder/estimate", sessions.form(builder_estimate), methods=["POST"]),
        Route("/builder/save", sessions.form(builder_save), methods=["POST"]),
        Route("/builder/saved/{name}", page(builder_saved), methods=["GET"]),
        Route("/static/builder.js", builder_script, methods=["GET"]),
        Route("/customers", page(customer_search), methods=["GET"]),
        Route("/customers", sessions.form(find), methods=["POST"]),
        Route("/customers/{customer_id}", page(customer_profile), methods=["GET"]),
        Route("/customers/{customer_id}/erase", sessions.form(erase), methods=["POST"]),
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


# Every mode a sync may declare (docs/syncs.md); the destination's own are checked on saving.
MODES_OFFERED = ("mirror", "upsert", "update", "insert", "full_resync")


def _engine_env(studio: Studio) -> dict[str, str]:
    """What a sync started from the console reads: the same manifest and destinations as the console."""
    env = {}
    if studio.manifest_path:
        env["ATTIVA_MANIFEST"] = str(studio.manifest_path)
    if studio.destinations_path:
        env["ATTIVA_DESTINATIONS"] = str(studio.destinations_path)
    return env


def _destination_names(studio: Studio) -> list[str]:
    from activations.destinations.config import read_destinations

    return sorted(read_destinations(studio.destinations_path).configs)


def _as_of(con, studio: Studio) -> datetime:
    """The "now" the last build computed for (the size estimate counts as of it), else the current time."""
    fresh = reading.freshness(con, studio.warehouse_path)
    return fresh.as_of or fresh.built_at or datetime.now(UTC)


def _save(studio: Studio, found: builder.Catalog, form: FormData, name: str, author: str) -> saving.Saved:
    """Check everything the form says, then commit the model and its YAML on audiences/<name>."""
    from activations.destinations.config import read_destinations

    description = " ".join(str(form.get("description", "")).split())
    saving.check_name(name, description)
    conditions = builder.from_form(form)
    now = datetime.now(UTC)
    sql = builder.model_sql(name, description, conditions, found, author, now)
    columns = saving.model_columns(found.columns, builder.trait_columns(conditions, found))
    sync = None
    if destination := str(form.get("sync_destination", "")).strip():
        destinations = read_destinations(studio.destinations_path)
        choice = saving.SyncChoice(destination, str(form.get("sync_mode", "")), str(form.get("sync_consent", "")))
        sync = saving.sync_entry(name, choice, destinations)
        saving.check_sync(name, [c.name for c in columns], sync, destinations)
    yml = saving.model_yaml(name, description, columns, sync)
    said = "\n".join(f"- {line}" for line in builder.described(conditions))
    synced = (f"Synced to {sync['destination']} ({sync['mode']}, consent {sync['consent']})." if sync
              else "No sync declared.")
    message = (f"{name}: {description}\n\nBuilt in the console (attiva studio) by {author}, for customers "
               f"matching all of:\n{said}\n\n{synced}\n\nFor review: `dbt build --select {name}`, then merge.\n")
    return saving.save(studio.project(), name, {f"{name}.sql": sql, f"{name}.yml": yml}, author, message)


def _local(target: Any) -> str:
    """Where to go after signing in: a path on this console only (never another site)."""
    target = str(target or "")
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/audiences"


def default_studio() -> Studio:
    """The console on the project's own files (settings)."""
    return Studio(settings.studio_users_path(), settings.warehouse_path())

