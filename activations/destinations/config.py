"""Destination instances: read from the root `destinations.yml`, secrets from the environment.

Each entry names an instance (`crm_hubspot`) and gives its `type` plus the
platform's options (list id, audience id, ...). The base URL and the secret come
from `ATTIVA_<NAME>_URL` / `ATTIVA_<NAME>_TOKEN`; by default they point at the
local sandbox, so nothing leaves the machine until a user sets them.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from activations import settings
from activations.config.errors import first_problem
from activations.destinations.base import Capabilities, Destination, DestinationConfigError, Secret

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# type -> "module:Class"; imported lazily so one broken or slow client never blocks the others.
REGISTRY: dict[str, str] = {
    "hubspot": "activations.destinations.hubspot:HubSpotDestination",
    "salesforce": "activations.destinations.salesforce.contacts:SalesforceDestination",
    "meta": "activations.destinations.meta.audiences:MetaDestination",
    "meta_conversions": "activations.destinations.meta.conversions:MetaConversionsDestination",
    "meta_catalog": "activations.destinations.meta.catalog:MetaCatalogDestination",
    "google": "activations.destinations.google:GoogleDestination",
    "google_conversions": "activations.destinations.google_conversions:GoogleConversionsDestination",
    "mailchimp": "activations.destinations.mailchimp:MailchimpDestination",
    "sendgrid": "activations.destinations.sendgrid.contacts:SendGridDestination",
    "brevo": "activations.destinations.brevo:BrevoDestination",
    "webhook": "activations.destinations.webhook.rows:WebhookDestination",
    "file_export": "activations.destinations.file_export:FileExportDestination",
    "google_merchant": "activations.destinations.google_merchant:GoogleMerchantDestination",
}


@dataclass(frozen=True)
class Option:
    """One option a destination type accepts in destinations.yml."""

    kind: type  # str, int, float, bool
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    help: str = ""
    per_sync: bool = False  # set in a sync's declaration, not in destinations.yml (HubSpot's `list`)


# Options every type accepts: tighter limits than the platform's (never looser) and the read timeout.
COMMON_OPTIONS: dict[str, Option] = {
    "read_timeout": Option(float, default=30.0, help="seconds to wait for a response"),
    "batch_size": Option(int, help="rows per request, at most the platform's limit"),
    "requests_per_window": Option(int, help="requests per rate-limit window, at most the platform's"),
    "window_seconds": Option(float, help="length of the rate-limit window in seconds"),
    "max_concurrency": Option(int, help="requests in flight at once, at most the platform's"),
}


@dataclass(frozen=True)
class DestinationConfig:
    """One destination instance, validated; `token` is a `Secret`."""

    name: str
    type: str
    url: str
    token: Secret
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file it came from, for error messages

    def error(self, reason: str, option: str | None = None) -> DestinationConfigError:
        """A DestinationConfigError naming this instance's file and the option at fault."""
        return DestinationConfigError(reason, file=self.source, destination=self.name, field=option)

    def get(self, key: str, default: Any = None) -> Any:
        """An option's value, `default` when unset."""
        value = self.options.get(key)
        return default if value is None else value

    def require(self, key: str) -> Any:
        """An option's value; a DestinationConfigError naming it when unset."""
        value = self.options.get(key)
        if value is None or value == "":
            raise self.error("missing required option", key)
        return value

    def for_sync(self, options: Mapping[str, Any], fail: Callable[[str, str], Exception] | None = None
                 ) -> DestinationConfig:
        """This instance as one sync uses it: with the options its declaration sets (`list`), validated.

        `fail(option, reason)` makes the error (the sync's declaration names the model); by default
        a DestinationConfigError naming this instance.
        """
        fail = fail or (lambda key, reason: self.error(reason, key))
        if not options:
            return self
        model = per_sync_model(self.type)
        try:
            chosen = model.model_validate(dict(options)).model_dump(exclude_none=True)
        except ValidationError as exc:
            key, reason = first_problem(exc, model, f"{self.type} per sync")
            raise fail(key, reason if key in model.model_fields else f"{self.type} takes no per-sync {key!r}") from None
        return replace(self, options={**self.options, **chosen})

    def limited(self, platform: Capabilities) -> Capabilities:
        """The platform's capabilities, tightened by this instance's options (never loosened)."""
        changes: dict[str, Any] = {}
        for key in ("batch_size", "max_concurrency"):
            value = self.options.get(key)
            if value is not None:
                if value < 1 or value > getattr(platform, key):
                    raise self.error(f"must be between 1 and the platform's {getattr(platform, key)}", key)
                changes[key] = value
        rpw, window = self.options.get("requests_per_window"), self.options.get("window_seconds")
        if rpw is not None or window is not None:
            rpw = rpw if rpw is not None else platform.requests_per_window
            window = window if window is not None else platform.window_seconds
            if rpw is None or window is None:
                raise self.error("set both requests_per_window and window_seconds", "requests_per_window")
            if rpw < 1 or window <= 0:
                raise self.error("must be positive", "requests_per_window")
            if platform.requests_per_window is not None and rpw / window > platform.requests_per_window / (
                platform.window_seconds or 1
            ):
                raise self.error(
                    f"faster than the platform's {platform.requests_per_window} per {platform.window_seconds}s",
                    "requests_per_window",
                )
            changes["requests_per_window"], changes["window_seconds"] = rpw, window
        return replace(platform, **changes) if changes else platform


def env_prefix(name: str) -> str:
    """`ATTIVA_<NAME>`: the instance name upper-cased, every non-alphanumeric as `_`."""
    return settings.instance_prefix(name)


def sandbox_url(dest_type: str, env: Mapping[str, str]) -> str:
    """The local sandbox's base URL for a type: `http://127.0.0.1:${ATTIVA_SANDBOX_PORT:-8765}/<type>`."""
    return f"http://127.0.0.1:{settings.sandbox_port(env)}/{dest_type}"


def destination_class(dest_type: str) -> type:
    """The client class registered for a type (imported on first use)."""
    module_name, _, class_name = REGISTRY[dest_type].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


@dataclass(frozen=True)
class DestinationsFile:
    """destinations.yml as read: the usable instances, and why the others (or the whole file) cannot be used.

    One bad entry makes only the syncs sending to it fail; an unreadable file, every sync."""

    configs: dict[str, DestinationConfig]
    errors: dict[str, DestinationConfigError] = field(default_factory=dict)  # instance name -> its mistake
    error: DestinationConfigError | None = None  # the file itself cannot be read

    def problem(self, name: str) -> DestinationConfigError | None:
        """Why instance `name` cannot be used, or None when it can (or is simply not declared)."""
        return self.error or self.errors.get(name)


def read_destinations(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> DestinationsFile:
    """Every destination instance in `path` (default: the root destinations.yml), each validated on its own."""
    path = Path(path) if path is not None else settings.destinations_path()
    env = os.environ if env is None else env
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DestinationsFile({}, error=DestinationConfigError("file not found", file=source))
    except yaml.YAMLError as exc:
        return DestinationsFile({}, error=DestinationConfigError(f"not valid YAML: {exc}", file=source))
    entries = raw.get("destinations") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        return DestinationsFile({}, error=DestinationConfigError(
            "expected a top-level 'destinations:' mapping", file=source, field="destinations"))
    configs, errors = {}, {}
    for name, entry in entries.items():
        try:
            configs[str(name)] = parse_destination(str(name), entry, env=env, source=source)
        except DestinationConfigError as exc:
            errors[str(name)] = exc
    return DestinationsFile(configs, errors)


def load_destinations(
    path: Path | str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, DestinationConfig]:
    """Every destination instance in `path` (default: the root destinations.yml), validated; the first
    mistake raises (`read_destinations` keeps the usable instances instead)."""
    found = read_destinations(path, env)
    if found.error or found.errors:
        raise found.error or next(iter(found.errors.values()))
    return found.configs


def parse_destination(
    name: str, entry: Any, *, env: Mapping[str, str] | None = None, source: str | None = None
) -> DestinationConfig:
    """One validated instance from its mapping in destinations.yml."""
    env = os.environ if env is None else env

    def fail(reason: str, option: str | None = None) -> DestinationConfigError:
        return DestinationConfigError(reason, file=source, destination=name, field=option)

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", name):
        raise fail("names start with a letter and hold only letters, digits, '_' and '-'")
    if not isinstance(entry, dict):
        raise fail("expected a mapping with at least 'type'")
    dest_type = entry.get("type")
    if not dest_type:
        raise fail("missing required option", "type")
    if dest_type not in REGISTRY:
        raise fail(f"unknown type {dest_type!r}; known: {', '.join(sorted(REGISTRY))}", "type")

    model = entry_model(dest_type)
    try:
        options = model.model_validate(dict(entry), context={"name": name}).model_dump(exclude={"type"})
    except ValidationError as exc:
        raise fail(*reversed(first_problem(exc, model, dest_type))) from None
    options = {key: value for key, value in options.items() if key in model.model_fields and value is not None}

    prefix = env_prefix(name)
    url = settings.instance_setting(name, "URL", env) or sandbox_url(dest_type, env)
    token = settings.instance_setting(name, "TOKEN", env)
    if not token:
        if (urlsplit(url).hostname or "") not in LOOPBACK_HOSTS and dest_type != "file_export":
            # Never send the sandbox's well-known token to a real platform.
            raise fail(f"{prefix}_URL points away from this machine: set {prefix}_TOKEN too", "token")
        token = f"sandbox-{dest_type}-token"
    return DestinationConfig(name=name, type=dest_type, url=url, token=Secret(token), options=options, source=source)


def build_client(config: DestinationConfig) -> Destination:
    """The client for one instance, from the registry of types."""
    if config.type not in REGISTRY:
        raise config.error(f"unknown type {config.type!r}", "type")
    return destination_class(config.type)(config)


@functools.cache
def entry_model(dest_type: str) -> type[BaseModel]:
    """The typed model of a destinations.yml entry of this type, from the options its client declares."""
    cls = destination_class(dest_type)
    fields: dict[str, Any] = {"type": (Literal[dest_type], Field(description="the platform"))}
    refused: dict[str, str] = dict(getattr(cls, "retired_options", {}))
    for key, option in {**COMMON_OPTIONS, **cls.options}.items():
        if option.per_sync:
            refused[key] = f"set per sync: `{key}:` in the sync's declaration (meta.activations)"
        else:
            fields[key] = _field(option)
    for key in (*refused, "token", "secret"):
        fields[key] = (SkipJsonSchema[Any], Field(None, exclude=True))

    def refuse(value: Any, info: ValidationInfo) -> Any:
        if info.field_name in refused:
            raise ValueError(refused[info.field_name])
        raise ValueError(f"secrets do not go in the file: set {env_prefix(info.context['name'])}_TOKEN")

    return create_model(f"{cls.__name__}Entry", __config__=ConfigDict(extra="forbid", strict=True),
                        __doc__=cls.__doc__,
                        __validators__={"refuse": field_validator(*refused, "token", "secret")(refuse)}, **fields)


@functools.cache
def per_sync_model(dest_type: str) -> type[BaseModel]:
    """The options of this type a sync's declaration may set (HubSpot's `list`)."""
    options = destination_class(dest_type).options
    return create_model(f"{dest_type}_per_sync", __config__=ConfigDict(extra="forbid", strict=True),
                        **{key: _field(option) for key, option in options.items() if option.per_sync})


def _field(option: Option) -> tuple[Any, Any]:
    """An Option as a pydantic field: its type (ids given as numbers read as strings), choices, default."""
    kind: Any = {str: _Id, int: int, float: float, bool: bool}[option.kind]
    if option.choices:
        kind = Literal[option.choices]
    described = option.help or (f"one of {', '.join(map(str, option.choices))}" if option.choices else None)
    if option.required:
        return kind, Field(description=described)
    return kind | None, Field(option.default, description=described)


def _id(value: Any) -> Any:
    # YAML reads `list_id: 1234` as an int; ids are strings to every platform.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_Id = Annotated[str, BeforeValidator(_id), WithJsonSchema({"type": ["string", "integer"]})]
