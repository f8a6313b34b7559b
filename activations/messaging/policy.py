"""Triggers and their delivery policy, read from the dbt manifest and `messaging.yml`.

A trigger is a dbt model `trg_<name>`: one row per occurrence, with `trigger_key`,
`customer_id`, `occurred_at`, an optional `exit_reason` (set once the journey should
stop, e.g. the cart was bought) and the payload its messages need. How it is sent is
declared beside the SQL, in the model's YAML:

    config:
      meta:
        messaging:
          channel: email                  # an instance in channels.yml
          consent: email_marketable       # marts.customers column checked at send time, or `none`
          marketing: true                 # counts towards the frequency caps (false: transactional)
          priority: 50                    # wins over lower priorities when a cap allows one message
          holdout: 0.1                    # share of customers kept out, per campaign, to measure uplift
          expires_after: 24h              # a step not sent by then is dropped, with the reason
          quiet_hours: default            # messaging.yml's window, `none`, or {start: "21:00", end: "08:00"}
          steps:
            - {template: abandoned_cart, delay: 2h}
            - {template: birthday, delay: 0h, coupon: {discount_pct: 15, valid_days: 14}}
            - {template: [promo_a, promo_b], delay: 1d}   # an A/B test: each customer gets one variant

A step with a list of templates is an A/B test: each customer is given one of them by a hash
of campaign and customer (the same one every time, independent of the holdout), and the ledger
records which (its `template` column), so measurement can compare the variants.

Every mistake names the model and the field, before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import yaml

from activations import settings
from activations.manifest import one_per_key

REQUIRED_COLUMNS = ("trigger_key", "customer_id", "occurred_at")
ALLOWED_KEYS = {"campaign", "channel", "consent", "marketing", "priority", "holdout", "expires_after",
                "quiet_hours", "steps"}
CAMPAIGN = re.compile(r"[A-Za-z0-9_\-]+")  # a campaign's name is part of its asset key
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d)\s*$")


class PolicyError(ValueError):
    """A trigger policy that cannot work, naming the model (or file) and the field."""


@dataclass(frozen=True)
class Coupon:
    discount_pct: float
    valid_days: int


@dataclass(frozen=True)
class Step:
    number: int  # 1-based
    template: str  # the first (or only) variant
    delay: timedelta  # after the occurrence
    coupon: Coupon | None = None
    variants: tuple[str, ...] = ()  # the other templates of an A/B test

    @property
    def templates(self) -> tuple[str, ...]:
        """Every template this step may send: one, or the variants of an A/B test."""
        return (self.template, *self.variants)


@dataclass(frozen=True)
class QuietHours:
    """No message between `start` and `end`, customer's local time (the window may wrap midnight)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Trigger:
    name: str  # the dbt model, trg_<campaign>
    relation: str
    campaign: str
    channel: str
    consent: str | None
    marketing: bool
    priority: int
    holdout: float
    expires_after: timedelta
    quiet_hours: QuietHours | None
    steps: tuple[Step, ...]
    columns: tuple[str, ...] = ()

    @property
    def payload_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in (*REQUIRED_COLUMNS, "exit_reason"))


@dataclass(frozen=True)
class Caps:
    """Marketing messages per customer across all campaigns and channels."""

    per_day: int | None = 1
    per_week: int | None = 3


@dataclass(frozen=True)
class Settings:
    caps: Caps = field(default_factory=Caps)
    quiet_hours: QuietHours | None = QuietHours(time(21), time(8))
    # The shop's page of a product, `{product_id}` filled in: the `url` of each recommendation a template
    # shows. None: recommendations carry no url.
    product_url: str | None = None


def duration(value: Any, fail) -> timedelta:
    """`30m`, `2h`, `5d` (or 0) as a timedelta."""
    if value in (0, "0"):
        return timedelta(0)
    match = DURATION.match(str(value))
    if not match:
        raise fail(f"{value!r} is not a duration like 30m, 2h or 5d")
    amount, unit = float(match.group(1)), match.group(2)
    return timedelta(minutes=amount) if unit == "m" else timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def _clock(value: Any, fail) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise fail(f"{value!r} is not a time like 21:00") from None


def quiet_hours(value: Any, default: QuietHours | None, fail) -> QuietHours | None:
    if value in (None, "default"):
        return default
    if value == "none":
        return None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise fail("quiet hours are `default`, `none` or {start: \"21:00\", end: \"08:00\"}")
    return QuietHours(_clock(value["start"], fail), _clock(value["end"], fail))


def load_settings(path: Path | None = None) -> Settings:
    """messaging.yml at the project root (ATTIVA_MESSAGING): caps and the default quiet hours."""
    path = path or settings.messaging_path()
    if not path.exists():
        return Settings()
    where = str(path)

    def fail(reason: str, field_name: str = "") -> PolicyError:
        return PolicyError(f"{where}: {field_name}: {reason}" if field_name else f"{where}: {reason}")

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from None
    caps = raw.get("caps") or {}
    for name in ("per_day", "per_week"):
        if caps.get(name) is not None and (not isinstance(caps[name], int) or caps[name] < 0):
            raise fail("a cap is a whole number of messages, or null for none", f"caps.{name}")
    product_url = raw.get("product_url")
    if product_url is not None and (not isinstance(product_url, str) or "{product_id}" not in product_url
                                    or not product_url.startswith(("https://", "http://"))):
        raise fail("expected an http(s) URL with {product_id} in it, e.g. https://shop.example/p/{product_id}",
                   "product_url")
    return Settings(caps=Caps(caps.get("per_day", 1), caps.get("per_week", 3)),
                    quiet_hours=quiet_hours(raw.get("quiet_hours", {"start": "21:00", "end": "08:00"}), None,
                                            lambda r: fail(r, "quiet_hours")),
                    product_url=product_url)


@dataclass(frozen=True)
class BrokenTrigger:
    """A trigger whose campaign cannot be sent, and why: it fails on its own, the other campaigns go out."""

    name: str  # the dbt model, trg_<campaign>
    campaign: str
    error: Exception  # a PolicyError, or the channel's or a template's error

    @property
    def reason(self) -> str:
        return str(self.error)


def read_triggers(manifest: dict[str, Any], channels: set[str], customer_columns: set[str] | None = None,
                  defaults: Settings | None = None) -> tuple[list[Trigger], list[BrokenTrigger]]:
    """Every `trg_*` model with its policy, each validated on its own: (the valid ones, the broken ones)."""
    defaults = defaults or Settings()
    found: list[Trigger | BrokenTrigger] = []
    for node in trigger_models(manifest):
        try:
            found.append(_parse(node, channels, customer_columns, defaults))
        except PolicyError as exc:
            found.append(BrokenTrigger(node["name"], campaign_name(node), exc))
    kept = one_per_key(found, lambda t: t.campaign, lambda t: BrokenTrigger(t.name, t.campaign, PolicyError(
        f"two triggers declare campaign {t.campaign!r}: campaigns must be unique")))
    return ([t for t in kept if isinstance(t, Trigger)], [t for t in kept if isinstance(t, BrokenTrigger)])


def triggers(manifest: dict[str, Any], channels: set[str], customer_columns: set[str] | None = None,
             defaults: Settings | None = None) -> list[Trigger]:
    """Every `trg_*` model with its policy, validated; the first mistake raises (`read_triggers` keeps the others)."""
    found, broken = read_triggers(manifest, channels, customer_columns, defaults)
    if broken:
        raise broken[0].error
    return found


def trigger_models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's `trg_*` model nodes, by name."""
    return sorted((n for n in manifest.get("nodes", {}).values()
                   if n.get("resource_type") == "model" and n["name"].startswith("trg_")), key=lambda n: n["name"])


def campaign_name(node: dict[str, Any]) -> str:
    """The campaign a trg_* model declares (meta.messaging.campaign), else its name without `trg_`."""
    policy = (node.get("config", {}).get("meta", {}) or {}).get("messaging")
    declared = policy.get("campaign") if isinstance(policy, dict) else None
    if isinstance(declared, str) and CAMPAIGN.fullmatch(declared):
        return declared
    return node["name"].removeprefix("trg_")


def _parse(node: dict[str, Any], channels: set[str], customer_columns: set[str] | None,
           defaults: Settings) -> Trigger:
    name = node["name"]
    policy = (node.get("config", {}).get("meta", {}) or {}).get("messaging")

    def fail(field_name: str, reason: str) -> PolicyError:
        return PolicyError(f"{name}: meta.messaging.{field_name}: {reason}")

    if not isinstance(policy, dict):
        raise PolicyError(f"{name}: declare meta.messaging (channel, consent, steps) in its YAML")
    if unknown := sorted(set(policy) - ALLOWED_KEYS):
        raise fail(unknown[0], f"unknown setting (allowed: {', '.join(sorted(ALLOWED_KEYS))})")
    if policy.get("campaign") is not None and not CAMPAIGN.fullmatch(str(policy["campaign"])):
        raise fail("campaign", f"{policy['campaign']!r}: a campaign's name holds only letters, digits, '_' and '-'")
    columns = tuple(node.get("columns", {}))
    if missing := [c for c in REQUIRED_COLUMNS if c not in columns]:
        raise PolicyError(f"{name}: the model's YAML must document the columns {', '.join(missing)}")
    channel = policy.get("channel")
    if channel not in channels:
        raise fail("channel", f"{channel!r} is not in channels.yml ({', '.join(sorted(channels))})")
    if "consent" not in policy:
        raise fail("consent", "declare the marts.customers column a customer needs (e.g. email_marketable), or `none`")
    consent = None if policy["consent"] in (None, "none") else policy["consent"]
    if consent is not None and customer_columns is not None and consent not in customer_columns:
        raise fail("consent", f"{consent!r} is not a column of marts.customers")
    holdout = policy.get("holdout", 0.0)
    if not isinstance(holdout, int | float) or not 0 <= holdout < 1:
        raise fail("holdout", "a share from 0 (nobody held out) to below 1")
    priority = policy.get("priority", 0)
    if not isinstance(priority, int):
        raise fail("priority", "a whole number; higher wins")
    steps_raw = policy.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise fail("steps", "a list of at least one {template, delay}")
    steps = []
    for i, raw in enumerate(steps_raw, start=1):
        where = f"steps[{i - 1}]"
        names = raw.get("template") if isinstance(raw, dict) else None
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise fail(where, "each step has a template (a folder in templates/, or a list of them for an A/B "
                              "test) and a delay")
        if len(set(names)) != len(names):
            raise fail(f"{where}.template", "an A/B test lists each template once")
        if unknown := sorted(set(raw) - {"template", "delay", "coupon"}):
            raise fail(f"{where}.{unknown[0]}", "unknown setting (allowed: template, delay, coupon)")
        coupon = None
        if raw.get("coupon") is not None:
            c = raw["coupon"]
            if not isinstance(c, dict) or not isinstance(c.get("discount_pct"), int | float) or not 0 < c[
                    "discount_pct"] <= 100 or not isinstance(c.get("valid_days", 14), int):
                raise fail(f"{where}.coupon", "{discount_pct: 1-100, valid_days: N}")
            coupon = Coupon(float(c["discount_pct"]), int(c.get("valid_days", 14)))
        steps.append(Step(i, names[0], duration(raw.get("delay", 0), lambda r, w=where: fail(f"{w}.delay", r)),
                          coupon, tuple(names[1:])))
    if [s.delay for s in steps] != sorted(s.delay for s in steps):
        raise fail("steps", "steps must come in order of their delay")
    return Trigger(
        name=name, relation=f"{node['schema']}.{node.get('alias') or name}",
        campaign=campaign_name(node), channel=channel, consent=consent,
        marketing=bool(policy.get("marketing", True)), priority=priority, holdout=float(holdout),
        expires_after=duration(policy.get("expires_after", "7d"), lambda r: fail("expires_after", r)),
        quiet_hours=quiet_hours(policy.get("quiet_hours"), defaults.quiet_hours, lambda r: fail("quiet_hours", r)),
        steps=tuple(steps), columns=columns)
