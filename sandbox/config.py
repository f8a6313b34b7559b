"""The sandbox's settings: expected secrets, rate limits, faults and timings.

Defaults mirror the vendors (see reference/destinations.md); every value can be set
at start (keyword arguments, CLI flags or environment) and faults and rate limits
can be changed while running through ``POST /_sandbox/faults``.

Environment read at start:
- ``ATTIVA_<TYPE>_TOKEN``: the secret a destination expects (default ``sandbox-<type>-token``;
  for the webhook it is the HMAC secret).
- ``ATTIVA_SANDBOX_STATE``: the state folder (default ``<data dir>/sandbox``).
- ``ATTIVA_SANDBOX_FAULTS``: JSON, one fault spec (same body as ``POST /_sandbox/faults``) or a list.
- ``ATTIVA_SANDBOX_RATE_LIMITS``: JSON ``{"<type>": {"requests": n, "window_seconds": s, ...}}``.
- ``ATTIVA_SANDBOX_PORT``: the CLI's default port (8765), the one the destination clients default to.
- ``ATTIVA_SMTP_PORT``: the CLI's default SMTP port (8025; 0 turns the mail server off).
- ``ATTIVA_SANDBOX_SMTP_PASSWORD``: with ``--smtp-username``, the password the mail server asks for.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.faults import FaultSettings
from sandbox.smtp import SmtpSettings

DESTINATION_TYPES = ("hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook", "twilio",
                     "meta_conversions", "fcm", "meta_leads", "google_conversions", "meta_catalog",
                     "google_merchant")

# requests/window_seconds: a rolling window (None = unlimited); daily: HubSpot's calendar-day cap;
# connections: Mailchimp's simultaneous-connection cap.
DEFAULT_RATE_LIMITS: dict[str, dict[str, Any]] = {
    # Private app on Professional/Enterprise: 190 requests per 10 s rolling window; daily 1M (Enterprise).
    "hubspot": {"requests": 190, "window_seconds": 10.0, "daily": 1_000_000},
    # Rolling 24 h org allocation (Enterprise base figure).
    "salesforce": {"requests": 100_000, "window_seconds": 86_400.0},
    # Business-use-case limit for custom audiences, about 190,000 calls an hour.
    "meta": {"requests": 190_000, "window_seconds": 3_600.0},
    # Conversions API: no published fixed pace; throttled like other Graph calls (the same figure as above).
    "meta_conversions": {"requests": 190_000, "window_seconds": 3_600.0},
    # Data Manager API: 300 requests per minute per project.
    "google": {"requests": 300, "window_seconds": 60.0},
    # Its events:ingest counts against the same 300 requests per minute per project.
    "google_conversions": {"requests": 300, "window_seconds": 60.0},
    # Mailchimp caps simultaneous connections, not requests per window.
    "mailchimp": {"connections": 10, "requests": None, "window_seconds": 1.0},
    "sendgrid": {"requests": 600, "window_seconds": 60.0},
    "brevo": {"requests": 10, "window_seconds": 1.0},
    # Attiva's own webhook contract: unthrottled unless configured (throughput benchmark).
    "webhook": {"requests": None, "window_seconds": 1.0},
    # Twilio queues what an account sends; the API refuses bursts past its concurrency with 429 (20429).
    "twilio": {"requests": 100, "window_seconds": 1.0},
    # FCM HTTP v1: 600,000 messages a minute per project by default; past it 429 QUOTA_EXCEEDED.
    "fcm": {"requests": 600_000, "window_seconds": 60.0},
    # Lead retrieval: 200 x 24 x the Page's leads of the last 90 days per day; a generous fixed figure here.
    "meta_leads": {"requests": 4_800, "window_seconds": 86_400.0},
    # Catalog Batch API: a per-catalog calls-per-minute formula Meta does not publish as a figure.
    "meta_catalog": {"requests": 600, "window_seconds": 60.0},
    # Merchant API products: a per-minute quota Google sizes to the account's use (no published figure).
    "google_merchant": {"requests": 600, "window_seconds": 60.0},
}
RATE_LIMIT_KEYS = {"requests", "window_seconds", "daily", "connections"}
# The plain settings SandboxConfig.build takes as keyword arguments.
OPTIONS = {"sendgrid_import_seconds", "persist_interval", "webhook_max_rows", "webhook_require_signature", "smtp_host",
           "twilio_account_sid", "twilio_callback_delay", "twilio_undelivered_rate", "twilio_undelivered_numbers",
           "twilio_opted_out_numbers", "twilio_blocked_prefixes", "fcm_project_id", "fcm_unregistered_tokens",
           "fcm_unregistered_rate", "meta_app_secret"}


def default_token(destination: str) -> str:
    return f"sandbox-{destination}-token"


def tokens_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The secret each destination expects: ``ATTIVA_<TYPE>_TOKEN`` if set, else the sandbox default."""
    return {t: env.get(f"ATTIVA_{t.upper()}_TOKEN") or default_token(t) for t in DESTINATION_TYPES}


def default_state_dir(env: Mapping[str, str]) -> Path:
    if state := env.get("ATTIVA_SANDBOX_STATE"):
        return Path(state)
    from activations import settings

    return settings.data_dir() / "sandbox"


@dataclass
class SandboxConfig:
    """Everything the sandbox needs to start; build it with :meth:`build`."""

    state_dir: Path
    tokens: dict[str, str] = field(default_factory=lambda: tokens_from_env({}))
    rate_limits: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_RATE_LIMITS))
    faults: dict[str, FaultSettings] = field(default_factory=lambda: {t: FaultSettings() for t in DESTINATION_TYPES})
    sendgrid_import_seconds: float = 2.0  # how long a SendGrid import job stays "pending"
    persist_interval: float = 1.0  # the debounced writer's shortest pause between writes
    webhook_max_rows: int = 10_000
    # Off only when asked for: lets the webhook take unsigned posts (a client that cannot sign,
    # e.g. another tool benchmarked against the same endpoint); a signature sent is still checked.
    webhook_require_signature: bool = True
    # The mail server: None = not started, 0 = a free port; it listens on smtp_host.
    smtp_port: int | None = None
    smtp_host: str = "127.0.0.1"
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    # Twilio (twilio.py): the one account it serves, how soon its status callbacks are posted, which
    # recipients end `undelivered`, which numbers have opted out and which countries are not enabled.
    twilio_account_sid: str = "AC" + "0" * 31 + "1"
    twilio_callback_delay: float = 0.05
    twilio_undelivered_rate: float = 0.0
    twilio_undelivered_numbers: tuple = ()
    twilio_opted_out_numbers: tuple = ()
    twilio_blocked_prefixes: tuple = ("+850",)
    # FCM (fcm.py): the one Firebase project it serves, and which device tokens it answers UNREGISTERED
    # (listed, or a share of all tokens by a hash: the same ones every time).
    fcm_project_id: str = "attiva-sandbox"
    fcm_unregistered_tokens: tuple = ()
    # Meta Lead Ads (meta.py MetaLeads): the app secret its leadgen webhooks are signed with
    # (ATTIVA_META_APP_SECRET, as `attiva serve` checks them).
    meta_app_secret: str = "sandbox-meta-app-secret"
    fcm_unregistered_rate: float = 0.0

    @classmethod
    def build(
        cls,
        state_dir: Path | str | None = None,
        *,
        tokens: Mapping[str, str] | None = None,
        rate_limits: Mapping[str, Any] | None = None,
        faults: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
        env: Mapping[str, str] | None = None,
        smtp_port: int | None = None,
        smtp: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SandboxConfig:
        """Defaults, then the environment, then explicit arguments (which win).

        ``smtp_port`` starts the mail server (None: not started, 0: a free port); ``smtp``
        takes :meth:`SmtpSettings.build`'s options (TLS, AUTH, faults).
        """
        env = os.environ if env is None else env
        config = cls(state_dir=Path(state_dir) if state_dir is not None else default_state_dir(env))
        if smtp_port is not None:
            if not 0 <= int(smtp_port) <= 65535:
                raise ValueError(f"smtp_port must be between 0 and 65535, got {smtp_port}")
            config.smtp_port = int(smtp_port)
        config.smtp = SmtpSettings.build(smtp)
        config.tokens = tokens_from_env(env)
        if tokens:
            unknown = set(tokens) - set(DESTINATION_TYPES)
            if unknown:
                raise ValueError(f"unknown destinations in tokens: {sorted(unknown)}")
            config.tokens.update(tokens)
        config.meta_app_secret = env.get("ATTIVA_META_APP_SECRET") or config.meta_app_secret
        if raw := env.get("ATTIVA_SANDBOX_RATE_LIMITS"):
            config.rate_limits = merge_rate_limits(config.rate_limits, json.loads(raw))
        if rate_limits:
            config.rate_limits = merge_rate_limits(config.rate_limits, rate_limits)
        if raw := env.get("ATTIVA_SANDBOX_FAULTS"):
            config.apply_fault_specs(json.loads(raw))
        if faults:
            config.apply_fault_specs(faults)
        for name, value in options.items():
            if name not in OPTIONS:
                raise TypeError(f"unknown sandbox option: {name}")
            if isinstance(getattr(config, name), bool):
                if not isinstance(value, bool):
                    raise TypeError(f"sandbox option {name} must be True or False")
                setattr(config, name, value)
            else:
                setattr(config, name, type(getattr(config, name))(value))
        return config

    def apply_fault_specs(self, specs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        for spec in [specs] if isinstance(specs, Mapping) else list(specs):
            _, settings, limits = parse_fault_spec(spec, self.faults)
            self.faults.update(settings)
            if limits:
                self.rate_limits = merge_rate_limits(self.rate_limits, limits)


def parse_fault_spec(
    spec: Mapping[str, Any], current: Mapping[str, FaultSettings]
) -> tuple[list[str], dict[str, FaultSettings], dict[str, Any]]:
    """Read one ``POST /_sandbox/faults`` body.

    Returns the targeted destinations, their new fault settings (fields not given
    keep their current value) and the rate-limit overrides keyed by destination.
    Raises ValueError on anything unknown or out of range.
    """
    if not isinstance(spec, Mapping):
        raise ValueError("a fault spec is a JSON object")
    spec = dict(spec)
    destination = spec.pop("destination", "*")
    if destination == "*":
        targets = list(DESTINATION_TYPES)
    elif destination in DESTINATION_TYPES:
        targets = [destination]
    else:
        raise ValueError(f"unknown destination {destination!r}; expected one of {DESTINATION_TYPES} or '*'")
    limits = spec.pop("rate_limits", None) or {}
    if not isinstance(limits, Mapping):
        raise ValueError("rate_limits must be an object")
    if limits and destination != "*" and not set(limits) & set(DESTINATION_TYPES):
        limits = {destination: limits}  # the bare window of the one destination named
    settings = {t: current[t].updated(spec) for t in targets}
    return targets, settings, dict(limits)


def merge_rate_limits(base: Mapping[str, dict[str, Any]], overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Overlay ``{"<type>": {...}}`` on ``base``; ``{"<type>": null}`` lifts a destination's window."""
    merged = copy.deepcopy(dict(base))
    for destination, values in overrides.items():
        if destination not in DESTINATION_TYPES:
            raise ValueError(f"unknown destination in rate_limits: {destination!r}")
        if values is None:
            values = {"requests": None}
        if not isinstance(values, Mapping):
            raise ValueError(f"rate_limits.{destination} must be an object or null")
        unknown = set(values) - RATE_LIMIT_KEYS
        if unknown:
            raise ValueError(f"unknown rate limit keys for {destination}: {sorted(unknown)}")
        for key, value in values.items():
            if value is not None and (not isinstance(value, int | float) or value <= 0):
                raise ValueError(f"rate_limits.{destination}.{key} must be a positive number or null")
            merged[destination][key] = value
    return merged
