"""The message channels declared in the root `channels.yml`: SMTP (messaging/smtp.py), SendGrid's
Mail Send, a signed webhook, a Salesforce Task for the sales team, an SMS through Twilio, or a mobile push
through Firebase Cloud Messaging (each beside
its platform's other clients, under destinations/), or an in-app / on-site message written into the inbox
`attiva serve` shows (messaging/in_app.py). What a channel sends and answers: messaging/delivery.py.

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
from activations.destinations.fcm.messages import FcmPushChannel
from activations.destinations.salesforce.tasks import SalesforceTaskChannel
from activations.destinations.sendgrid.mail import ACTIVITY_LAG_SECONDS, SendGridMailChannel
from activations.destinations.twilio.messages import LOOKUP_LAG_SECONDS, TwilioSmsChannel
from activations.destinations.webhook.messages import WebhookMessageChannel
from activations.messaging.delivery import Channel, Delivery, OutgoingMessage
from activations.messaging.in_app import DEFAULT_TTL, InAppChannel
from activations.messaging.policy import duration
from activations.messaging.smtp import SmtpChannel, build_email


class ChannelConfigError(ConfigError):
    """channels.yml is wrong, or a secret is missing; names the file, the channel and the field."""

    def __init__(self, reason: str, *, file: str | None = None, channel: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(reason, file=file, entry=channel, entry_kind="channel", field=field)
        self.channel = channel


CHANNEL_CLASSES: dict[str, type] = {"smtp": SmtpChannel, "sendgrid_mail": SendGridMailChannel,
                                    "webhook": WebhookMessageChannel, "salesforce_task": SalesforceTaskChannel,
                                    "twilio_sms": TwilioSmsChannel, "fcm_push": FcmPushChannel,
                                    "in_app": InAppChannel}
# The sandbox's Twilio account (sandbox/twilio.py): used when a twilio_sms channel points at this machine.
SANDBOX_TWILIO_ACCOUNT_SID = "AC" + "0" * 31 + "1"
# The sandbox's Firebase project (sandbox/fcm.py): used when an fcm_push channel points at this machine.
SANDBOX_FCM_PROJECT_ID = "attiva-sandbox"


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


class TwilioSmsEntry(ChannelEntry):
    type: Literal["twilio_sms"]
    account_sid: str | None = Field(None, description="the Account SID, AC...; ATTIVA_<NAME>_ACCOUNT_SID wins; "
                                    "default the sandbox's when the channel points at this machine")
    from_number: str | None = Field(None, description="the sender: a Twilio number in E.164 or an "
                                    "alphanumeric sender id (this or messaging_service_sid)")
    messaging_service_sid: str | None = Field(None, description="send through a Messaging Service, MG...")
    status_callback: str | None = Field(None, description="where Twilio posts delivery statuses: `attiva serve`'s "
                                        "/twilio/<name>/status; ATTIVA_<NAME>_STATUS_CALLBACK wins; default "
                                        "this machine's `attiva serve`")
    max_segments: int = Field(3, ge=1, le=10, description="longer texts are refused (failed, with the count)")
    lookup_lag: float | None = Field(None, ge=0, description="seconds before a message of unknown outcome is "
                                     "looked up in Twilio's message list (default 300; 0 for the sandbox)")

    @field_validator("account_sid", "messaging_service_sid")
    @classmethod
    def _sid(cls, value: str | None, info: ValidationInfo) -> str | None:
        prefix = "AC" if info.field_name == "account_sid" else "MG"
        if value is not None and not re.fullmatch(prefix + r"[0-9a-fA-F]{32}", value):
            raise ValueError(f"expected {prefix} and 32 hex digits")
        return value

    @field_validator("from_number")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and not (_E164.fullmatch(value) or re.fullmatch(r"[A-Za-z0-9 ]{1,11}", value)):
            raise ValueError("expected a number in E.164 (+39...) or an alphanumeric sender id of up to 11 characters")
        return value


class FcmPushEntry(ChannelEntry):
    type: Literal["fcm_push"]
    project_id: str | None = Field(None, description="the Firebase project id; ATTIVA_<NAME>_PROJECT_ID wins; "
                                   "default the sandbox's when the channel points at this machine")
    ttl: str | int | None = Field(None, description="how long FCM keeps a push for an offline device: 30m, 4h, "
                                  "1d (default FCM's own, 4 weeks)")

    @field_validator("project_id")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        # Firebase project ids: 6 to 30 lower-case letters, digits and hyphens, starting with a letter.
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", value):
            raise ValueError("expected a Firebase project id: 6 to 30 lower-case letters, digits and hyphens")
        return value


class InAppEntry(ChannelEntry):
    type: Literal["in_app"]
    ttl: str | int | None = Field(None, description="how long a message stays on offer once available: 30m, "
                                  "12h, 7d (default 7d)")


_API_VERSION = re.compile(r"\d+\.\d")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
ENTRIES: dict[str, type[ChannelEntry]] = {"smtp": SmtpEntry, "sendgrid_mail": SendGridMailEntry,
                                          "webhook": WebhookEntry, "salesforce_task": SalesforceTaskEntry,
                                          "twilio_sms": TwilioSmsEntry, "fcm_push": FcmPushEntry,
                                          "in_app": InAppEntry}


class ChannelsFile(BaseModel):
    """channels.yml: message channels by name (for the JSON schema; entries are read one by one)."""

    channels: dict[str, Annotated[SmtpEntry | SendGridMailEntry | WebhookEntry | SalesforceTaskEntry | TwilioSmsEntry
                                  | FcmPushEntry | InAppEntry, Field(discriminator="type")]]


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

    if isinstance(options, TwilioSmsEntry):
        return _twilio(name, options, variable, env, fail, common)

    if isinstance(options, FcmPushEntry):
        return _fcm(name, options, variable, env, fail, common)

    if isinstance(options, InAppEntry):
        ttl = DEFAULT_TTL if options.ttl is None else duration(options.ttl, lambda reason: fail(reason, "ttl"))
        # Always the serving folder's inbox (ATTIVA_SERVING): where `attiva serve` reads it.
        return InAppChannel(None, ttl=ttl, **common)

    path = options.path or "/attiva/messages"
    base = variable("URL") or sandbox_url("webhook", env)
    url = base.rstrip("/") + (path if path.startswith("/") else f"/{path}")
    token = variable("TOKEN") or _sandbox_token(url, "webhook", prefix, fail)
    return WebhookMessageChannel(url, Secret(token), **common)


def _twilio_account(name: str, options: TwilioSmsEntry, variable, env: Mapping[str, str], fail
                    ) -> tuple[str, str, str]:
    """(base URL, account SID, auth token) of a twilio_sms channel."""
    url = variable("URL") or sandbox_url("twilio", env)
    local = (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
    token = variable("TOKEN") or _sandbox_token(url, "twilio", env_prefix(name), fail)
    sid = variable("ACCOUNT_SID") or options.account_sid or (SANDBOX_TWILIO_ACCOUNT_SID if local else None)
    if not sid:
        raise fail(f"set account_sid (or {env_prefix(name)}_ACCOUNT_SID) when the channel points at Twilio",
                   "account_sid")
    return url, sid, token


def _twilio(name: str, options: TwilioSmsEntry, variable, env: Mapping[str, str], fail,
            common: dict[str, Any]) -> TwilioSmsChannel:
    if bool(options.from_number) == bool(options.messaging_service_sid):
        raise fail("set one of from_number and messaging_service_sid", "from_number")
    url, sid, token = _twilio_account(name, options, variable, env, fail)
    local = (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
    callback = (variable("STATUS_CALLBACK") or options.status_callback
                or f"http://127.0.0.1:{settings.serve_port(env)}/twilio/{name}/status")
    lag = options.lookup_lag if options.lookup_lag is not None else 0.0 if local else LOOKUP_LAG_SECONDS
    return TwilioSmsChannel(url, sid, Secret(token), from_number=options.from_number,
                            messaging_service_sid=options.messaging_service_sid, status_callback=callback,
                            max_segments=options.max_segments, activity_lag=lag, **common)


def _fcm(name: str, options: FcmPushEntry, variable, env: Mapping[str, str], fail,
         common: dict[str, Any]) -> FcmPushChannel:
    url = variable("URL") or sandbox_url("fcm", env)
    local = (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
    # An OAuth 2.0 access token of a service account with the firebase.messaging scope, from the environment.
    token = variable("TOKEN") or _sandbox_token(url, "fcm", env_prefix(name), fail)
    project = variable("PROJECT_ID") or options.project_id or (SANDBOX_FCM_PROJECT_ID if local else None)
    if not project:
        raise fail(f"set project_id (or {env_prefix(name)}_PROJECT_ID) when the channel points at FCM", "project_id")
    ttl = None
    if options.ttl is not None:
        ttl = int(duration(options.ttl, lambda reason: fail(reason, "ttl")).total_seconds())
    return FcmPushChannel(url, project, Secret(token), ttl_seconds=ttl, **common)


def twilio_webhook_token(name: str, path: Path | str | None = None, env: Mapping[str, str] | None = None
                         ) -> Secret | None:
    """The auth token Twilio signs channel `name`'s status callbacks and inbound messages with (`attiva
    serve` checks `X-Twilio-Signature` with it); None when channels.yml has no twilio_sms channel by that name."""
    env = os.environ if env is None else env
    path = Path(path) if path is not None else settings.channels_path()
    entry = load_channel_entries(path).get(name)
    if not isinstance(entry, Mapping) or entry.get("type") != "twilio_sms":
        return None
    options = TwilioSmsEntry.model_validate(dict(entry), context={"prefix": env_prefix(name)})

    def fail(reason: str, option: str | None = None) -> ChannelConfigError:
        return ChannelConfigError(reason, file=str(path), channel=name, field=option)

    _, _, token = _twilio_account(name, options, lambda suffix: settings.instance_setting(name, suffix, env), env,
                                  fail)
    return Secret(token)


def _sandbox_token(url: str, sandbox_type: str, prefix: str, fail) -> str:
    if (urlsplit(url).hostname or "") not in LOOPBACK_HOSTS:
        # Never send the sandbox's well-known token to a real platform.
        raise fail(f"{prefix}_URL points away from this machine: set {prefix}_TOKEN too", "token")
    return f"sandbox-{sandbox_type}-token"


__all__ = [
    "Channel",
    "ChannelConfigError",
    "Delivery",
    "FcmPushChannel",
    "InAppChannel",
    "OutgoingMessage",
    "SalesforceTaskChannel",
    "SendGridMailChannel",
    "SmtpChannel",
    "TwilioSmsChannel",
    "WebhookMessageChannel",
    "build_email",
    "channel_from_config",
    "load_channels",
    "load_usable_channels",
]

