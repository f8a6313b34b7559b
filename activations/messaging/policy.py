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
          send_time: best_hour            # at the customer's best hour (send_time.py); default as_soon_as_due
          send_time_control: 0.2          # with best_hour: a random share sent as soon as due, to compare against
          fallback: {channel: email, consent: email_marketable}   # when the customer cannot be reached on `channel`
          steps:
            - {template: abandoned_cart, delay: 2h}
            - {template: birthday, delay: 0h, coupon: {discount_pct: 15, valid_days: 14}}
            - {template: [promo_a, promo_b], delay: 1d}   # an A/B test: each customer gets one variant
            - {template: [promo_c, promo_d], allocation: thompson, reward: clicked}   # a bandit picks the split
            - {template: cart_push, delay: 2h, fallback_template: abandoned_cart}      # with `fallback`: every step

A campaign with a `fallback` channel sends a customer who cannot be reached on its channel (push: no active
device token; SMS: no phone number or opted out; or no consent for the channel) the step's
`fallback_template` by the fallback channel instead, checked against the fallback's consent, suppression
list and quiet hours and the same frequency caps: one decision per occurrence, so at most one of the two.

A step with a list of templates is an A/B test: each customer is given one of them by a hash
of campaign and customer (the same one every time, independent of the holdout), and the ledger
records which (its `template` column), so measurement can compare the variants. With
`allocation: thompson` the split follows the variants' rewards so far (allocation.py); the ledger
logs the probability each variant had (`variant_probability`), whichever the allocation.

Every mistake names the model and the field, before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from activations import settings
from activations.config.errors import ConfigError, first_problem
from activations.manifest import audiences as manifest_audiences
from activations.manifest import declared_in, one_per_key

REQUIRED_COLUMNS = ("trigger_key", "customer_id", "occurred_at")
# What a journey's step may branch on or wait for (docs/messaging.md#journeys-that-branch), besides
# `in_audience:<aud_ model>`.
BEHAVIOURS = ("opened", "clicked", "bought", "stopped")
IN_AUDIENCE = "in_audience:"
CAMPAIGN = re.compile(r"[A-Za-z0-9_\-]+")  # a campaign's name is part of its asset key
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d)\s*$")


class PolicyError(ConfigError):
    """A trigger policy (or messaging.yml) that cannot work, naming the file, the model and the field."""


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
    allocation: str = "even"  # how an A/B test shares out its variants: `even` or `thompson`
    reward: str = "clicked"  # what Thompson sampling learns from: `clicked` or `converted`
    fallback_template: str | None = None  # sent by the trigger's fallback channel instead (policy `fallback`)
    # A journey's branches (docs/messaging.md#journeys-that-branch): this step's own channel and its consent
    # (None: the campaign's), and what the customer did since the occurrence that skips it.
    channel: str | None = None
    consent: str | None = None
    unless: tuple[str, ...] = ()
    # ...or what it waits for: sent as soon as the customer does one of these, skipped if they have not by `delay`.
    when: tuple[str, ...] = ()
    # The audiences the step's conditions name (`in_audience:<model>`): condition -> the audience's relation.
    audiences: tuple[tuple[str, str], ...] = ()

    @property
    def conditions(self) -> tuple[str, ...]:
        """Every behaviour the step looks at, `unless` and `when`."""
        return tuple(dict.fromkeys((*self.unless, *self.when)))

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
class Fallback:
    """The channel a customer unreachable on the campaign's channel is sent by instead, and its consent."""

    channel: str
    consent: str | None  # a marts.customers column, or None (`none`)


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
    send_time: str = "as_soon_as_due"  # or best_hour: each step moved to the customer's best hour (send_time.py)
    send_time_control: float = 0.0  # with best_hour: the share of customers left as soon as due, for comparison
    fallback: Fallback | None = None  # where a customer unreachable on `channel` is sent instead

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel this campaign may send by: its own, its fallback's, its steps' own."""
        own = (self.channel, self.fallback.channel) if self.fallback else (self.channel,)
        return (*own, *dict.fromkeys(s.channel for s in self.steps if s.channel and s.channel not in own))

    def step_channel(self, step: Step) -> str:
        return step.channel or self.channel

    def step_consent(self, step: Step) -> str | None:
        return step.consent if step.channel else self.consent

    def due_after(self, step: Step) -> timedelta:
        """When a step falls due, after the occurrence: its delay; a step that waits for behaviour (`when`) is
        looked at from the step before it falls due, and its delay is how long it waits."""
        if not step.when:
            return step.delay
        return self.steps[step.number - 2].delay if step.number > 1 else timedelta(0)

    @property
    def switches_channel(self) -> bool:
        """Whether a step sends by a channel of its own: a journey across channels."""
        return any(s.channel for s in self.steps)

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


class CapsEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    per_day: int | None = Field(1, ge=0, description="marketing messages a customer may get per day; null: no cap")
    per_week: int | None = Field(3, ge=0, description="per rolling 7 days; null: no cap")


class WindowEntry(BaseModel):
    """A quiet-hours window in the customer's local time: {start: "21:00", end: "08:00"} (may wrap midnight)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=r"^\d{1,2}:\d{2}$")
    end: str = Field(pattern=r"^\d{1,2}:\d{2}$")


class MessagingFile(BaseModel):
    """messaging.yml: the rules every campaign shares."""

    model_config = ConfigDict(extra="forbid", strict=True)

    caps: CapsEntry = Field(default_factory=CapsEntry)
    quiet_hours: Literal["none"] | WindowEntry | None = Field(
        default_factory=lambda: WindowEntry(start="21:00", end="08:00"),
        description="the default window of every campaign, or `none`")
    product_url: str | None = Field(None, description="the shop's page of a product, with {product_id} in it")

    @field_validator("product_url")
    @classmethod
    def _product_url(cls, value: str | None) -> str | None:
        if value is not None and ("{product_id}" not in value or not value.startswith(("https://", "http://"))):
            raise ValueError("expected an http(s) URL with {product_id} in it, e.g. https://shop.example/p/{product_id}")
        return value


def load_settings(path: Path | None = None) -> Settings:
    """messaging.yml at the project root (ATTIVA_MESSAGING): caps and the default quiet hours."""
    path = path or settings.messaging_path()
    if not path.exists():
        return Settings()
    where = str(path)

    def fail(reason: str, field_name: str | None = None) -> PolicyError:
        return PolicyError(reason, file=where, field=field_name)

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise fail("expected a mapping with caps, quiet_hours, product_url")
    try:
        parsed = MessagingFile.model_validate(raw)
    except ValidationError as exc:
        field_name, reason = first_problem(exc, MessagingFile)
        raise fail(reason, field_name) from None
    return Settings(caps=Caps(parsed.caps.per_day, parsed.caps.per_week),
                    quiet_hours=quiet_hours(raw.get("quiet_hours", {"start": "21:00", "end": "08:00"}), None,
                                            lambda r: fail(r, "quiet_hours")),
                    product_url=parsed.product_url)


class CouponEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    discount_pct: float = Field(gt=0, le=100, description="the discount, 1-100 %")
    valid_days: int = Field(14, gt=0, description="days the coupon stays valid")


class StepEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    template: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
                        ] = Field(min_length=1, description="a folder in templates/, or a list of them for an A/B test")
    delay: str | int | float = Field(0, description="after the occurrence: 30m, 2h, 5d")
    coupon: CouponEntry | None = None
    allocation: Literal["even", "thompson"] = Field(
        "even", description="an A/B test's split: `even`, or `thompson` (more customers to the variant that "
                            "earns more of the reward)")
    reward: Literal["clicked", "converted"] = Field(
        "clicked", description="what `thompson` learns from: a click on the message, or an order attributed to it")
    fallback_template: str | None = Field(
        None, min_length=1, description="with the campaign's `fallback`: the template (a folder in templates/) "
                                        "sent by the fallback channel to a customer unreachable on the campaign's")
    channel: str | None = Field(None, description="this step's channel, an instance in channels.yml (default: the "
                                                  "campaign's): a journey that switches channel")
    consent: str | None = Field(None, description="with `channel`: the marts.customers column that channel needs "
                                                  "(e.g. email_marketable), or `none`")
    unless: list[str] = Field(
        default_factory=list, description="skip this step if the customer did any of these since the occurrence: "
                                          "opened or clicked an earlier step's message, bought (placed an order), "
                                          "stopped (replied STOP: opted out of SMS), in_audience:<aud_ model> "
                                          "(is in that audience)")
    when: list[str] = Field(
        default_factory=list, description="wait for any of these (the same as `unless`): the step goes out as soon "
                                          "as the customer does one, and is skipped if they have not by its delay")


class FallbackEntry(BaseModel):
    """Where a customer who cannot be reached on the campaign's channel is sent instead."""

    model_config = ConfigDict(extra="forbid", strict=True)

    channel: str = Field(description="an instance in channels.yml, other than the campaign's channel")
    consent: str | None = Field(description="the marts.customers column the fallback needs (e.g. email_marketable), "
                                            "or `none`")


class MessagingPolicy(BaseModel):
    """meta.messaging of a trg_* model: how its occurrences become messages."""

    model_config = ConfigDict(extra="forbid", strict=True)

    campaign: str | None = Field(None, pattern=CAMPAIGN.pattern, description="letters, digits, '_' and '-'")
    channel: str = Field(description="an instance in channels.yml")
    consent: str | None = Field(description="the marts.customers column a customer needs (e.g. email_marketable), "
                                            "or `none`")
    marketing: bool = Field(True, description="counts towards the frequency caps (false: transactional)")
    priority: int = Field(0, description="a whole number; higher wins when a cap allows one message")
    holdout: float = Field(0.0, ge=0, lt=1, description="a share from 0 (nobody held out) to below 1")
    expires_after: str | int = Field("7d", description="a step not sent by then is dropped: 24h, 7d")
    quiet_hours: Literal["default", "none"] | WindowEntry | None = Field(
        None, description="messaging.yml's window (`default`), `none`, or {start: \"21:00\", end: \"08:00\"}")
    steps: list[StepEntry] = Field(min_length=1, description="a list of at least one {template, delay}")
    send_time: Literal["as_soon_as_due", "best_hour"] = Field(
        "as_soon_as_due", description="as_soon_as_due: at occurrence + delay; best_hour: moved to the customer's "
                                      "best hour of day (marts.customer_best_send_hour) when that is before expiry "
                                      "and outside quiet hours")
    send_time_control: float = Field(
        0.0, ge=0, lt=1, description="with send_time: best_hour, the share of customers (drawn at random, the same "
                                     "ones every time) sent as soon as due instead, so the report can measure "
                                     "what the best hour adds")
    fallback: FallbackEntry | None = Field(
        None, description="{channel, consent}: customers unreachable on `channel` (push: no device token; SMS: no "
                          "phone or opted out; or no consent) get each step's fallback_template by this channel")


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
    audiences = {a.name: a.relation for a in manifest_audiences(manifest)}  # what `in_audience:` may name
    found: list[Trigger | BrokenTrigger] = []
    for node in trigger_models(manifest):
        try:
            found.append(_parse(node, channels, customer_columns, defaults, audiences))
        except PolicyError as exc:
            found.append(BrokenTrigger(node["name"], campaign_name(node), exc))
    kept = one_per_key(found, lambda t: t.campaign, lambda t: BrokenTrigger(t.name, t.campaign, PolicyError(
        f"two triggers declare campaign {t.campaign!r}: campaigns must be unique", entry=t.name,
        entry_kind="model", field="meta.messaging.campaign")))
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
           defaults: Settings, audiences: dict[str, str]) -> Trigger:
    name = node["name"]
    policy = (node.get("config", {}).get("meta", {}) or {}).get("messaging")

    def fail(field_name: str | None, reason: str) -> PolicyError:
        return PolicyError(reason, file=declared_in(node), entry=name, entry_kind="model",
                           field=f"meta.messaging.{field_name}" if field_name else "meta.messaging")

    if not isinstance(policy, dict):
        raise fail(None, "declare meta.messaging (channel, consent, steps) in its YAML")
    try:
        parsed = MessagingPolicy.model_validate(policy)
    except ValidationError as exc:
        raise fail(*first_problem(exc, MessagingPolicy)) from None
    if parsed.send_time_control and parsed.send_time != "best_hour":
        raise fail("send_time_control", "a control group compares against send_time: best_hour; declare that too")
    columns = tuple(node.get("columns", {}))
    if missing := [c for c in REQUIRED_COLUMNS if c not in columns]:
        raise PolicyError(f"the model's YAML must document the columns {', '.join(missing)}",
                          file=declared_in(node), entry=name, entry_kind="model", field="columns")
    if parsed.channel not in channels:
        raise fail("channel", f"{parsed.channel!r} is not in channels.yml ({', '.join(sorted(channels))})")
    consent = _consent(parsed.consent, customer_columns, lambda r: fail("consent", r))
    fallback = None
    if parsed.fallback is not None:
        if parsed.fallback.channel == parsed.channel:
            raise fail("fallback.channel", f"the fallback must be another channel than {parsed.channel!r}")
        if parsed.fallback.channel not in channels:
            raise fail("fallback.channel",
                       f"{parsed.fallback.channel!r} is not in channels.yml ({', '.join(sorted(channels))})")
        fallback = Fallback(parsed.fallback.channel, _consent(parsed.fallback.consent, customer_columns,
                                                              lambda r: fail("fallback.consent", r)))
    steps = []
    for i, raw in enumerate(parsed.steps, start=1):
        where = f"steps[{i - 1}]"
        names = raw.template
        if not all(names):
            raise fail(f"{where}.template", "a template is a folder in templates/")
        if len(set(names)) != len(names):
            raise fail(f"{where}.template", "an A/B test lists each template once")
        if raw.allocation != "even" and len(names) < 2:
            raise fail(f"{where}.allocation", f"{raw.allocation} shares out an A/B test: list two templates or more")
        if fallback is not None and raw.fallback_template is None:
            raise fail(f"{where}.fallback_template",
                       f"with a fallback to {fallback.channel!r}, each step names the template it sends there")
        if fallback is None and raw.fallback_template is not None:
            raise fail(f"{where}.fallback_template", "declare the campaign's fallback: {channel, consent} too")
        coupon = Coupon(raw.coupon.discount_pct, raw.coupon.valid_days) if raw.coupon else None
        own = raw.channel not in (None, parsed.channel)  # a step on the campaign's channel is the campaign's
        step_consent = _step_consent(raw, where, channels, fallback, customer_columns, fail) if own else None
        if raw.consent is not None and not own:
            raise fail(f"{where}.consent", "a step's consent goes with a channel of its own; declare that too")
        named: dict[str, str] = {}
        for kind in ("unless", "when"):
            for condition in getattr(raw, kind):
                if condition.startswith(IN_AUDIENCE) and condition.removeprefix(IN_AUDIENCE) in audiences:
                    named[condition] = audiences[condition.removeprefix(IN_AUDIENCE)]
                elif condition not in BEHAVIOURS:
                    known = ", ".join(f"{IN_AUDIENCE}{a}" for a in sorted(audiences)) or "no aud_ model"
                    raise fail(f"{where}.{kind}", f"{condition!r} is none of {', '.join(BEHAVIOURS)}, "
                                                  f"{IN_AUDIENCE}<an audience> ({known})")
            if i == 1 and {"opened", "clicked"} & set(getattr(raw, kind)):
                raise fail(f"{where}.{kind}", "the first step has no earlier message to be opened or clicked")
        delay = duration(raw.delay, lambda r, w=where: fail(f"{w}.delay", r))
        if raw.when and not delay:
            raise fail(f"{where}.delay", "a step with `when` waits until its delay for the customer: give it one")
        steps.append(Step(i, names[0], delay, coupon, tuple(names[1:]), raw.allocation, raw.reward,
                          raw.fallback_template, raw.channel if own else None, step_consent,
                          tuple(dict.fromkeys(raw.unless)), tuple(dict.fromkeys(raw.when)), tuple(named.items())))
    if [s.delay for s in steps] != sorted(s.delay for s in steps):
        raise fail("steps", "steps must come in order of their delay")
    return Trigger(
        name=name, relation=f"{node['schema']}.{node.get('alias') or name}",
        campaign=campaign_name(node), channel=parsed.channel, consent=consent,
        marketing=parsed.marketing, priority=parsed.priority, holdout=float(parsed.holdout),
        expires_after=duration(parsed.expires_after, lambda r: fail("expires_after", r)),
        quiet_hours=quiet_hours(policy.get("quiet_hours"), defaults.quiet_hours, lambda r: fail("quiet_hours", r)),
        steps=tuple(steps), columns=columns, send_time=parsed.send_time,
        send_time_control=float(parsed.send_time_control), fallback=fallback)


def _step_consent(raw: StepEntry, where: str, channels: set[str], fallback: Fallback | None,
                  customer_columns: set[str] | None, fail) -> str | None:
    """The consent a step on a channel of its own needs, the channel checked."""
    if raw.channel not in channels:
        raise fail(f"{where}.channel", f"{raw.channel!r} is not in channels.yml ({', '.join(sorted(channels))})")
    if fallback is not None:
        raise fail(f"{where}.channel", "a journey whose steps name their channels has no campaign fallback: give "
                                       "each step the channel it sends by")
    if raw.consent is None:
        raise fail(f"{where}.consent", f"declare the consent {raw.channel!r} needs (a marts.customers column, "
                                       "or `none`)")
    return _consent(raw.consent, customer_columns, lambda r: fail(f"{where}.consent", r))


def _consent(declared: str | None, customer_columns: set[str] | None, fail) -> str | None:
    """A consent column of marts.customers, or None for `none`."""
    consent = None if declared in (None, "none") else declared
    if consent is not None and customer_columns is not None and consent not in customer_columns:
        raise fail(f"{consent!r} is not a column of marts.customers")
    return consent
