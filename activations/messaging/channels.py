"""The message channels declared in the root `channels.yml`: SMTP (messaging/smtp.py), SendGrid's
Mail Send, a signed webhook, or a Salesforce Task for the sales team (each beside its platform's
other clients, under destinations/). What a channel sends and answers: messaging/delivery.py.

Secrets come only from the environment (`ATTIVA_<NAME>_PASSWORD`, `ATTIVA_<NAME>_TOKEN`), as for
destinations.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema

from activations import settings
from activations.config.errors import ConfigError, first_problem
from activations.destinations.base import Secret
from activations.destinations.config import LOOPBACK_HOSTS, env_prefix, sandbox_url
from activations.destinations.salesforce.tasks import SalesforceTaskChannel
from activations.destinations.sendgrid.mail import ACTIVITY_LAG_SECONDS, SendGridMailChannel
from activations.destinations.webhook.messages import WebhookMessageChannel
from activations.messaging.delivery import Channel, Delivery, OutgoingMessage
from activations.messaging.smtp import SmtpChannel, build_email


class ChannelConfigError(ConfigError):
    """channels.yml is wrong, or a secret is missing; names the file, the channel and the field."""

    def __init__(self, reason: str, *, file: str | None = None, channel: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(reason, file=file, entry=channel, entry_kind="channel", field=field)
        self.channel = channel


CHANNEL_CLASSES: dict[str, type] = {"smtp": SmtpChannel, "sendgrid_mail": SendGridMailChannel,
                                    "webhook": WebhookMessageChannel, "salesforce_task": SalesforceTaskChannel}


def dagster_kind(channel_type: str) -> str | None:
    """The Dagster kind a channel of this type (channels.yml `type`) declares; None for an unknown type."""
    cls = CHANNEL_CLASSES.get(channel_type)
    return cls.dagster_kind if cls else None


class ChannelEntry(BaseModel):
    """What every channels.yml entry may set. Secrets are refused: they come from the environment."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    type: str
    password: SkipJsonSchema[Any] = Field(None, exclude=True)
    token: SkipJsonSchema[Any] = Field(None, exclude=True)
    secret: SkipJsonSchema[Any] = Field(None, exclude=True)
    api_key: SkipJsonSchema[Any] = Field(None, exclude=True)
    sender: str | None = Field(None, alias="from", description="who the messages come from: 'Name <address@domain>'")
    timeout: float = Field(30.0, gt=0, description="seconds to wait for the server's answer")
    pool_size: int = Field(4, gt=0, description="messages in flight at once")

    @field_validator("password", "token", "secret", "api_key")
    @classmethod
    def _no_secrets(cls, value: Any, info: ValidationInfo) -> Any:
        suffix = "PASSWORD" if info.data.get("type") == "smtp" else "TOKEN"
        raise ValueError(f"secrets do not go in the file: set {info.context['prefix']}_{suffix} in the environment")

    @field_validator("sender")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value and "@" not in parseaddr(value)[1]:
            raise ValueError("expected 'Name <address@domain>'")
        return value


class _EmailEntry(ChannelEntry):
    sender: str | None = Field(None, alias="from", validate_default=True,
                               description="who the messages come from: 'Name <address@domain>' (required)")

    @field_validator("sender")
    @classmethod
    def _required(cls, value: str | None) -> str | None:
        # There is no default sender: it would be someone else's brand.
        if not value:
            raise ValueError("required: who the messages come from, as 'Name <address@domain>'")
        return value


class SmtpEntry(_EmailEntry):
    type: Literal["smtp"]
    host: str | None = Field(None, description="the mail server (ATTIVA_<NAME>_HOST wins); default 127.0.0.1")
    port: Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, str) and v.strip().isdigit() else v),
                    Field(gt=0)] | None = Field(
        None, description="ATTIVA_<NAME>_PORT wins; default the sandbox's ATTIVA_SMTP_PORT")
    starttls: bool = Field(False, description="upgrade the connection before logging in")
    username: str | None = Field(None, description="log in as (ATTIVA_<NAME>_USERNAME wins); needs _PASSWORD")


class SendGridMailEntry(_EmailEntry):
    type: Literal["sendgrid_mail"]
    activity_lag: float | None = Field(None, ge=0, description="seconds SendGrid's activity feed may lag")

    @field_validator("activity_lag", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ValueError("expected seconds, 0 or more")
        return value


class WebhookEntry(ChannelEntry):
    type: Literal["webhook"]
    path: str = Field("/attiva/messages", description="appended to ATTIVA_<NAME>_URL")


class SalesforceTaskEntry(ChannelEntry):
    type: Literal["salesforce_task"]
    api_version: Annotated[str, Field(strict=False)] = "62.0"
    contact_external_id_field: str = "Attiva_Customer_Id__c"
    task_external_id_field: str = "Attiva_Message_Id__c"
    owner_id: str | None = None
    priority: Literal["High", "Normal", "Low"] = "Normal"
    due_in_days: int = Field(2, ge=0, description="days from the message to the task's due date")

    @field_validator("api_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> str:
        version = str(value).removeprefix("v")
        if not _API_VERSION.fullmatch(version):
            raise ValueError(f"expected a version like \"62.0\", got {value!r}")
        return version

    @field_validator("contact_external_id_field", "task_external_id_field")
    @classmethod
    def _api_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise ValueError("expected a field's API name, e.g. Attiva_Customer_Id__c")
        return value


_API_VERSION = re.compile(r"\d+\.\d")
ENTRIES: dict[str, type[ChannelEntry]] = {"smtp": SmtpEntry, "sendgrid_mail": SendGridMailEntry,
                                          "webhook": WebhookEntry, "salesforce_task": SalesforceTaskEntry}


class ChannelsFile(BaseModel):
    """channels.yml: message channels by name (for the JSON schema; entries are read one by one)."""

    channels: dict[str, Annotated[SmtpEntry | SendGridMailEntry | WebhookEntry | SalesforceTaskEntry,
                                  Field(discriminator="type")]]


def load_channel_entries(path: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """The entries of channels.yml (not yet validated: `channel_from_config` does that)."""
    path = Path(path) if path is not None else settings.channels_path()
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChannelConfigError("file not found", file=source) from None
    except yaml.YAMLError as exc:
        raise ChannelConfigError(f"not valid YAML: {exc}", file=source) from None
    entries = raw.get("channels") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise ChannelConfigError("expected a top-level 'channels:' mapping", file=source)
    return entries


def load_channels(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """A client for every channel in channels.yml; close them when done. The first bad entry raises."""
    channels, errors = load_usable_channels(path, env)
    if errors:
        for channel in channels.values():
            channel.close()
        raise next(iter(errors.values()))
    return channels


def load_usable_channels(path: Path | str | None = None, env: Mapping[str, str] | None = None
                         ) -> tuple[dict[str, Channel], dict[str, ChannelConfigError]]:
    """A client for every valid channel in channels.yml (close them when done), and the mistake of each
    other entry: a bad entry stops only the campaigns sent by it. An unreadable file raises."""
    path = Path(path) if path is not None else settings.channels_path()
    env = os.environ if env is None else env
    channels: dict[str, Channel] = {}
    errors: dict[str, ChannelConfigError] = {}
    for name, entry in load_channel_entries(path).items():
        try:
            channels[name] = channel_from_config(name, entry, env, source=str(path))
        except ChannelConfigError as exc:
            errors[name] = exc
    return channels, errors


def channel_from_config(name: str, entry: Mapping[str, Any], env: Mapping[str, str], *,
                        source: str | None = None) -> Channel:
    """The client for one channels.yml entry; secrets from `ATTIVA_<NAME>_PASSWORD` / `_TOKEN` only."""

    def fail(reason: str, option: str | None = None) -> ChannelConfigError:
        return ChannelConfigError(reason, file=source, channel=name, field=option)

    if not isinstance(entry, Mapping):
        raise fail("expected a mapping with at least 'type'")
    kind = entry.get("type")
    if kind not in ENTRIES:
        raise fail(f"unknown type {kind!r}; known: {', '.join(sorted(ENTRIES))}", "type")
    prefix = env_prefix(name)
    try:
        options = ENTRIES[kind].model_validate(dict(entry), context={"prefix": prefix})
    except ValidationError as exc:
        raise fail(*reversed(first_problem(exc, ENTRIES[kind], kind))) from None

    from_name, from_email = parseaddr(options.sender or "")
    common = {"timeout": options.timeout, "pool_size": options.pool_size, "from_email": from_email,
              "from_name": from_name}

    def variable(suffix: str) -> str | None:
        return settings.instance_setting(name, suffix, env)

    if isinstance(options, SmtpEntry):
        raw_port = variable("PORT") or options.port
        try:
            port = int(raw_port) if raw_port else settings.smtp_port(env)
        except ValueError as exc:
            raise fail(f"expected a port number, got {raw_port!r}" if raw_port else str(exc), "port") from None
        username = variable("USERNAME") or options.username or None
        password = variable("PASSWORD")
        if username and not password:
            raise fail(f"a username needs {prefix}_PASSWORD in the environment", "username")
        return SmtpChannel(variable("HOST") or options.host or "127.0.0.1", port, starttls=options.starttls,
                           username=username, password=Secret(password) if username and password else None,
                           **common)

    if isinstance(options, SendGridMailEntry):
        url = variable("URL") or sandbox_url("sendgrid", env)
        token = variable("TOKEN") or _sandbox_token(url, "sendgrid", prefix, fail)
        # The sandbox's activity feed is immediate; SendGrid's may take minutes.
        lag_default = 0.0 if (urlsplit(url).hostname or "") in LOOPBACK_HOSTS else ACTIVITY_LAG_SECONDS
        lag = options.activity_lag if options.activity_lag is not None else lag_default
        return SendGridMailChannel(url, Secret(token), activity_lag=lag, **common)

    if isinstance(options, SalesforceTaskEntry):
        url = variable("URL") or sandbox_url("salesforce", env)
        token = variable("TOKEN") or _sandbox_token(url, "salesforce", prefix, fail)
        return SalesforceTaskChannel(
            url, Secret(token), api_version=options.api_version, owner_id=options.owner_id or None,
            priority=options.priority, due_in_days=options.due_in_days,
            contact_external_id_field=options.contact_external_id_field,
            task_external_id_field=options.task_external_id_field, **common)

    path = options.path or "/attiva/messages"
    base = variable("URL") or sandbox_url("webhook", env)
    url = base.rstrip("/") + (path if path.startswith("/") else f"/{path}")
    token = variable("TOKEN") or _sandbox_token(url, "webhook", prefix, fail)
    return WebhookMessageChannel(url, Secret(token), **common)


def _sandbox_token(url: str, sandbox_type: str, prefix: str, fail) -> str:
    if (urlsplit(url).hostname or "") not in LOOPBACK_HOSTS:
        # Never send the sandbox's well-known token to a real platform.
        raise fail(f"{prefix}_URL points away from this machine: set {prefix}_TOKEN too", "token")
    return f"sandbox-{sandbox_type}-token"


__all__ = [
    "Channel",
    "ChannelConfigError",
    "Delivery",
    "OutgoingMessage",
    "SalesforceTaskChannel",
    "SendGridMailChannel",
    "SmtpChannel",
    "WebhookMessageChannel",
    "build_email",
    "channel_from_config",
    "load_channels",
    "load_usable_channels",
]

