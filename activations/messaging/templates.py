"""Message content: Jinja2 templates (subject, HTML, text) rendered in a sandbox.

A template is a folder `templates/<name>/` with `subject.txt.j2`, `body.html.j2` and
`body.txt.j2`, or, for an SMS, `sms.txt.j2` alone (plain text, no subject, no HTML; it must tell how
to opt out, with the word STOP), or, for a mobile push, `push_title.txt.j2` and `push.txt.j2` (the
notification's title, as the subject, and its text), or, for an in-app message, `in_app_title.txt.j2`,
`in_app.txt.j2` and `in_app_link.txt.j2` (its title, text and the link it opens); folders starting with `_` hold shared layouts and are not templates.
The context every template gets is documented in `templates/README.md`.

Why it is safe to render data: Jinja never evaluates the values it is given, so a first
name `{{ 7*7 }}` prints as typed; HTML parts autoescape (`<script>` becomes text); the
sandbox (immutable: a template cannot change a list shared by many renders) keeps
template authors away from Python internals; StrictUndefined makes a misspelt variable
an error at validation, when definitions load, instead of a blank in a sent message.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from activations import settings
from activations.messaging.links import add_utm

PARTS = ("subject.txt.j2", "body.html.j2", "body.txt.j2")
SMS_PART = "sms.txt.j2"  # an SMS template's only part: its text
PUSH_PARTS = ("push_title.txt.j2", "push.txt.j2")  # a push template's parts: the notification's title and text
# An in-app (on-site) message's parts: its title, its text and the link it opens (one URL, may be empty).
IN_APP_PARTS = ("in_app_title.txt.j2", "in_app.txt.j2", "in_app_link.txt.j2")
CONTEXT_KEYS = ("customer", "trigger", "campaign", "step", "recommendations", "coupon", "unsubscribe_url")
UTM_SOURCE = "attiva"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")
_UNDEFINED = (
    (re.compile(r"^'(?P<name>.+)' is undefined$"), "unknown variable"),
    (re.compile(r"has no attribute '(?P<name>.+)'$"), "unknown attribute"),
    (re.compile(r"has no element (?P<name>.+)$"), "unknown element"),
)


class TemplateError(ValueError):
    """A template that cannot render: which template, file and line, and the unknown name if any."""

    def __init__(self, message: str, *, template: str, file: Path | None = None, line: int | None = None,
                 variable: str | None = None):
        super().__init__(message)
        self.template = template
        self.file = file
        self.line = line
        self.variable = variable


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str
    link: str = ""  # an in-app message's link


def euro(value: float) -> str:
    """12.5 -> '12,50 €', 1234 -> '1.234,00 €' (Italian number format)."""
    grouped = f"{float(value):,.2f}".replace(",", "\0").replace(".", ",").replace("\0", ".")
    return f"{grouped} €"


def pct(value: float) -> str:
    """15.0 -> '15%', 12.5 -> '12,5%'."""
    return f"{float(value):g}".replace(".", ",") + "%"


def date_it(value: date | datetime | str) -> str:
    """A date, datetime or ISO string as '31/12/2026'."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%d/%m/%Y")


def tracker(*, campaign: str, step: int, channel: str = "email") -> Callable[[str], str]:
    """The `track(url)` function templates get: UTM parameters for this campaign, step and channel."""
    content = f"step-{step}"

    def track(url: str) -> str:
        return add_utm(str(url), source=UTM_SOURCE, medium=channel, campaign=campaign, content=content)

    return track


def message_context(*, customer: Mapping[str, Any], trigger: Mapping[str, Any], campaign: str, step: int,
                    unsubscribe_url: str, recommendations: Iterable[Mapping[str, Any]] = (),
                    coupon: Mapping[str, Any] | None = None, channel: str = "email") -> dict[str, Any]:
    """The context of one message, shaped as templates/README.md documents it."""
    return {
        "customer": dict(customer), "trigger": dict(trigger), "campaign": campaign, "step": int(step),
        "recommendations": [dict(r) for r in recommendations], "coupon": dict(coupon) if coupon else None,
        "unsubscribe_url": unsubscribe_url, "channel": channel,
        "track": tracker(campaign=campaign, step=int(step), channel=channel),
    }


def sample_context(*, campaign: str = "sample", step: int = 1, channel: str = "email",
                   coupon: bool = True) -> dict[str, Any]:
    """A context shaped like a real one, with every documented field, to validate templates with."""
    site = "https://shop.example"  # a made-up shop: validation needs the shape, not a brand
    return message_context(
        customer={"customer_id": "C-SAMPLE", "first_name": "Giulia", "last_name": "Rossi",
                  "email": "giulia.rossi@example.it", "city": "Bologna", "country": "IT",
                  "timezone": "Europe/Rome"},
        trigger={
            "cart_products": [
                {"product_id": "P-0001", "name": "Miscela Classica 250g", "price": 7.9, "quantity": 2},
                {"product_id": "P-0002", "name": "Moka Express 3 tazze", "price": 29.0, "quantity": 1},
            ],
            "product_id": "P-0003", "product_name": "Arabica Etiopia Sidamo 500g", "discount_pct": 20.0,
            "current_price": 10.32, "order_id": "O-SAMPLE", "days_since_last_order": 97,
            "viewed_product_name": "Macinacaffè manuale in acciaio",
            "became_mql_at": "2026-10-20T10:00:00",
        },
        campaign=campaign, step=step, channel=channel,
        recommendations=[
            {"product_id": f"P-01{i}", "name": name, "price": price, "url": f"{site}/p/P-01{i}"}
            for i, (name, price) in enumerate((("Tazzine da espresso x6", 18.5), ("Macinacaffè elettrico", 49.0),
                                               ("Tè verde Sencha 100g", 8.9)))
        ],
        coupon={"code": "SAMPLE-7KQ2-XM9P", "discount_pct": 15.0, "expires_at": datetime(2026, 12, 31, 23, 59)}
        if coupon else None,
        unsubscribe_url=f"http://127.0.0.1:{settings.SERVE_PORT}/unsubscribe?token=sample",
    )


class Templates:
    """The template folder: lists, validates and renders templates, each compiled once."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else settings.templates_dir()
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(self.folder)),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False,
                                                default=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # no stat() per render: a changed template needs a new Templates
            cache_size=-1,
        )
        self._env.filters.update(euro=euro, pct=pct, date_it=date_it)
        self._compiled: dict[str, tuple[jinja2.Template, ...]] = {}
        self._in_app: set[str] = set()  # in-app templates: three parts, as an email's, but not one

    def names(self) -> list[str]:
        """Every template folder (one holding at least one part), sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if p.is_dir() and _NAME.fullmatch(p.name)
                      and any((p / part).is_file() for part in (*PARTS, SMS_PART, *PUSH_PARTS, *IN_APP_PARTS)))

    def validate(self, name: str, sample: Mapping[str, Any]) -> None:
        """Render every part with `sample`; a missing part or unknown name raises TemplateError, and so does an
        SMS template that does not tell how to opt out (STOP)."""
        rendered = self.render(name, sample)
        if self.is_sms(name) and "STOP" not in rendered.text.upper():
            raise TemplateError(f"template {name!r}: an SMS must say how to opt out, e.g. \"STOP per annullare\" "
                                f"(a reply of STOP opts the number out)", template=name,
                                file=self.folder / name / SMS_PART)

    def is_sms(self, name: str) -> bool:
        """Whether `name` is an SMS template (`sms.txt.j2`, no subject or HTML)."""
        return len(self._compiled.get(name) or self._compile(name)) == 1

    def render(self, name: str, context: Mapping[str, Any]) -> RenderedMessage:
        """Subject (one line), HTML and text of template `name` for one message."""
        compiled = self._compiled.get(name) or self._compile(name)
        missing = [key for key in CONTEXT_KEYS if key not in context]
        if missing:
            raise TemplateError(f"template {name!r}: the context lacks {', '.join(missing)}", template=name)
        if "track" not in context:
            context = {**context, "track": tracker(campaign=context["campaign"], step=context["step"],
                                                   channel=context.get("channel", "email"))}
        if len(compiled) == 1:  # an SMS: the text alone, blank-line runs kept to one, no trailing space
            text = self._render_part(name, SMS_PART, compiled[0], context)
            return RenderedMessage(subject="", html="", text=_BLANK_LINES.sub("\n\n", text).strip() + "\n")
        if name in self._in_app:  # an in-app message: a one-line title, a short text, one link
            title, text, link = (self._render_part(name, part, template, context)
                                 for part, template in zip(IN_APP_PARTS, compiled, strict=True))
            return RenderedMessage(subject=" ".join(title.split()), html="", text=" ".join(text.split()) + "\n",
                                   link="".join(link.split()))
        if len(compiled) == 2:  # a push: a one-line title and a short text
            title, text = (self._render_part(name, part, template, context)
                           for part, template in zip(PUSH_PARTS, compiled, strict=True))
            return RenderedMessage(subject=" ".join(title.split()), html="", text=" ".join(text.split()) + "\n")
        subject, html, text = (self._render_part(name, part, template, context)
                               for part, template in zip(PARTS, compiled, strict=True))
        # Blocks left out by `if`s leave runs of blank lines in the text part: keep at most one.
        return RenderedMessage(subject=" ".join(subject.split()), html=html,
                               text=_BLANK_LINES.sub("\n\n", text).strip() + "\n")

    def _compile(self, name: str) -> tuple[jinja2.Template, ...]:
        folder = self.folder / name
        if not _NAME.fullmatch(name) or not folder.is_dir():
            raise TemplateError(f"template {name!r} not found in {self.folder}", template=name, file=folder)
        if (folder / SMS_PART).is_file() and not any((folder / part).is_file() for part in PARTS):
            self._compiled[name] = (self._load(name, folder, SMS_PART),)
            return self._compiled[name]
        if any((folder / part).is_file() for part in IN_APP_PARTS) and not any((folder / p).is_file() for p in PARTS):
            if missing := [part for part in IN_APP_PARTS if not (folder / part).is_file()]:
                raise TemplateError(f"template {name!r} lacks {missing[0]} in {folder}", template=name,
                                    file=folder / missing[0])
            self._in_app.add(name)
            self._compiled[name] = tuple(self._load(name, folder, part) for part in IN_APP_PARTS)
            return self._compiled[name]
        if any((folder / part).is_file() for part in PUSH_PARTS) and not any((folder / p).is_file() for p in PARTS):
            if missing := [part for part in PUSH_PARTS if not (folder / part).is_file()]:
                raise TemplateError(f"template {name!r} lacks {missing[0]} in {folder}", template=name,
                                    file=folder / missing[0])
            self._compiled[name] = tuple(self._load(name, folder, part) for part in PUSH_PARTS)
            return self._compiled[name]
        missing = [part for part in PARTS if not (folder / part).is_file()]
        if missing:
            raise TemplateError(f"template {name!r} lacks {', '.join(missing)} in {folder}", template=name,
                                file=folder / missing[0])
        self._compiled[name] = tuple(self._load(name, folder, part) for part in PARTS)
        return self._compiled[name]

    def _load(self, name: str, folder: Path, part: str) -> jinja2.Template:
        try:
            return self._env.get_template(f"{name}/{part}")
        except jinja2.TemplateSyntaxError as exc:
            file = Path(exc.filename) if exc.filename else folder / part
            raise TemplateError(f"template {name!r}, file {file}, line {exc.lineno}: syntax error: {exc.message}",
                                template=name, file=file, line=exc.lineno) from None
        except jinja2.TemplateNotFound as exc:  # an include or extends naming a missing file
            raise TemplateError(f"template {name!r}, file {folder / part}: {exc.name} not found",
                                template=name, file=folder / part) from None

    def _render_part(self, name: str, part: str, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        try:
            return template.render(context)
        except Exception as exc:  # every failure of a template (a filter given bad data too) becomes one named error
            raise self._error(name, part, exc) from None

    def _error(self, name: str, part: str, exc: Exception) -> TemplateError:
        file, line = self.folder / name / part, None
        # Jinja rewrites tracebacks so template frames carry the template's file and line;
        # the innermost one is where it failed (an included layout, say).
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2") and Path(frame.filename).is_relative_to(self.folder):
                file, line = Path(frame.filename), frame.lineno
                break
        if isinstance(exc, jinja2.TemplateSyntaxError):
            file, line = Path(exc.filename or file), exc.lineno
        detail, variable = f"{type(exc).__name__}: {exc}", None
        if isinstance(exc, jinja2.UndefinedError):
            for pattern, kind in _UNDEFINED:
                if match := pattern.search(str(exc)):
                    variable = match["name"].strip("'")
                    detail = f"{kind} {variable!r} ({exc})"
                    break
        where = f"line {line}" if line else "line unknown"
        return TemplateError(f"template {name!r}, file {file}, {where}: {detail}", template=name, file=file,
                             line=line, variable=variable)
