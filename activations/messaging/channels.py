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
from typing import Any
from urllib.parse import urlsplit

import yaml

from activations import settings
from activations.destinations.base import Secret
from activations.destinations.config import LOOPBACK_HOSTS, env_prefix, sandbox_url
from activations.destinations.salesforce.tasks import SalesforceTaskChannel
from activations.destinations.sendgrid.mail import ACTIVITY_LAG_SECONDS, SendGridMailChannel
from activations.destinations.webhook.messages import WebhookMessageChannel
from activations.messaging.delivery import Channel, Delivery, OutgoingMessage
from activations.messaging.smtp import SmtpChannel, build_email


class ChannelConfigError(ValueError):
    """channels.yml is wrong, or a secret is missing; names the file, the channel and the field."""

    def __init__(self, reason: str, *, file: str | None = None, channel: str | None = None,
                 field: str | None = None) -> None:
        where = ", ".join(
            part for part in (f"file {file}" if file else "", f"channel {channel!r}" if channel else "",
                              f"field {field!r}" if field else "") if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)
        self.file, self.channel, self.field = file, channel, field


SECRET_FIELDS = ("password", "token", "secret", "api_key")
COMMON_OPTIONS = {"type", "from", "timeout", "pool_size"}
CHANNEL_CLASSES: dict[str, type] = {"smtp": SmtpChannel, "sendgrid_mail": SendGridMailChannel,
                                    "webhook": WebhookMessageChannel, "salesforce_task": SalesforceTaskChannel}


def dagster_kind(channel_type: str) -> str | None:
    """The Dagster kind a channel of this type (channels.yml `type`) declares; None for an unknown type."""
    cls = CHANNEL_CLASSES.get(channel_type)
    return cls.dagster_kind if cls else None

TYPE_OPTIONS: dict[str, set[str]] = {
    "smtp": {"host", "port", "starttls", "username"},
    "sendgrid_mail": {"activity_lag"},
    "webhook": {"path"},
    "salesforce_task": {"api_version", "contact_external_id_field", "task_external_id_field", "owner_id",
                        "priority", "due_in_days"},
}
TASK_PRIORITIES = ("High", "Normal", "Low")
_API_VERSION = re.compile(r"\d+\.\d")


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
    if kind not in TYPE_OPTIONS:
        raise fail(f"unknown type {kind!r}; known: {', '.join(sorted(TYPE_OPTIONS))}", "type")
    prefix = env_prefix(name)
    for key in entry:
        if key in SECRET_FIELDS:
            variable = f"{prefix}_PASSWORD" if kind == "smtp" else f"{prefix}_TOKEN"
            raise fail(f"secrets do not go in the file: set {variable} in the environment", key)
        if key not in COMMON_OPTIONS | TYPE_OPTIONS[kind]:
            raise fail(f"unknown option; {kind} accepts: {', '.join(sorted(COMMON_OPTIONS | TYPE_OPTIONS[kind]))}",
                       key)

    from_name, from_email = parseaddr(str(entry.get("from") or ""))
    if entry.get("from") and "@" not in from_email:
        raise fail("expected 'Name <address@domain>'", "from")
    timeout = _number(entry, "timeout", 30.0, float, fail)
    pool_size = int(_number(entry, "pool_size", 4, int, fail))
    common = {"timeout": timeout, "pool_size": pool_size, "from_email": from_email, "from_name": from_name}

    if kind == "smtp":
        host = env.get(f"{prefix}_HOST") or str(entry.get("host") or "127.0.0.1")
        raw_port = env.get(f"{prefix}_PORT") or entry.get("port") or env.get("ATTIVA_SMTP_PORT") or settings.SMTP_PORT
        try:
            port = int(raw_port)
        except (TypeError, ValueError):
            raise fail(f"expected a port number, got {raw_port!r}", "port") from None
        starttls = entry.get("starttls", False)
        if not isinstance(starttls, bool):
            raise fail("expected true or false", "starttls")
        username = env.get(f"{prefix}_USERNAME") or entry.get("username") or None
        password = env.get(f"{prefix}_PASSWORD")
        if username and not password:
            raise fail(f"a username needs {prefix}_PASSWORD in the environment", "username")
        _require_sender(entry, fail)
        return SmtpChannel(host, port, starttls=starttls, username=username,
                           password=Secret(password) if username and password else None, **common)

    if kind == "sendgrid_mail":
        url = env.get(f"{prefix}_URL") or sandbox_url("sendgrid", env)
        token = env.get(f"{prefix}_TOKEN") or _sandbox_token(url, "sendgrid", prefix, fail)
        # The sandbox's activity feed is immediate; SendGrid's may take minutes.
        lag_default = 0.0 if (urlsplit(url).hostname or "") in LOOPBACK_HOSTS else ACTIVITY_LAG_SECONDS
        lag = entry.get("activity_lag", lag_default)
        if isinstance(lag, bool) or not isinstance(lag, int | float) or lag < 0:
            raise fail("expected seconds, 0 or more", "activity_lag")
        _require_sender(entry, fail)
        return SendGridMailChannel(url, Secret(token), activity_lag=lag, **common)

    if kind == "salesforce_task":
        return _salesforce_task(entry, env, prefix, common, fail)

    path = str(entry.get("path") or "/attiva/messages")
    base = env.get(f"{prefix}_URL") or sandbox_url("webhook", env)
    url = base.rstrip("/") + (path if path.startswith("/") else f"/{path}")
    token = env.get(f"{prefix}_TOKEN") or _sandbox_token(url, "webhook", prefix, fail)
    return WebhookMessageChannel(url, Secret(token), **common)


def _require_sender(entry: Mapping[str, Any], fail) -> None:
    """An email needs a sender; there is no default one (it would be someone else's brand)."""
    if not entry.get("from"):
        raise fail("required: who the messages come from, as 'Name <address@domain>'", "from")


def _salesforce_task(entry: Mapping[str, Any], env: Mapping[str, str], prefix: str, common: dict[str, Any],
                     fail) -> SalesforceTaskChannel:
    version = str(entry.get("api_version") or "62.0").removeprefix("v")
    if not _API_VERSION.fullmatch(version):
        raise fail(f"expected a version like \"62.0\", got {entry.get('api_version')!r}", "api_version")
    priority = entry.get("priority", "Normal")
    if priority not in TASK_PRIORITIES:
        raise fail(f"expected one of {', '.join(TASK_PRIORITIES)}", "priority")
    due_in_days = entry.get("due_in_days", 2)
    if isinstance(due_in_days, bool) or not isinstance(due_in_days, int) or due_in_days < 0:
        raise fail("expected a whole number of days, 0 or more", "due_in_days")
    fields = {}
    for option, default in (("contact_external_id_field", "Attiva_Customer_Id__c"),
                            ("task_external_id_field", "Attiva_Message_Id__c")):
        value = str(entry.get(option) or default)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise fail("expected a field's API name, e.g. Attiva_Customer_Id__c", option)
        fields[option] = value
    url = env.get(f"{prefix}_URL") or sandbox_url("salesforce", env)
    token = env.get(f"{prefix}_TOKEN") or _sandbox_token(url, "salesforce", prefix, fail)
    return SalesforceTaskChannel(url, Secret(token), api_version=version, owner_id=entry.get("owner_id") or None,
                                 priority=priority, due_in_days=due_in_days, **fields, **common)


def _sandbox_token(url: str, sandbox_type: str, prefix: str, fail) -> str:
    if (urlsplit(url).hostname or "") not in LOOPBACK_HOSTS:
        # Never send the sandbox's well-known token to a real platform.
        raise fail(f"{prefix}_URL points away from this machine: set {prefix}_TOKEN too", "token")
    return f"sandbox-{sandbox_type}-token"


def _number(entry: Mapping[str, Any], key: str, default: float, kind: type, fail) -> float:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise fail(f"expected {'an integer' if kind is int else 'a number'}", key)
    if value <= 0:
        raise fail("must be positive", key)
    return value


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

