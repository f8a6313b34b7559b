"""One pass of triggered messaging: plan new occurrences, then decide and send what is due.

Deciding happens at send time, never earlier: the trigger must still hold (no exit
reason), the step not expired, the customer's consent true now, their address not on the
suppression list, their local time outside quiet hours, and the frequency caps not spent
(higher priority first). What is left is rendered, claimed (`queued`), and sent; each message
is recorded in the send journal right before and right after its channel call, so a pass killed
at any point leaves at most the messages in flight with an unknown outcome (recovery.py settles
them at the start of the next pass; docs/messaging-guarantees.md).

An SMS channel (one whose client's `recipient` is "phone": twilio_sms) is addressed to the customer's
`phone` instead of their email, is checked against the SMS suppression list (STOP replies, opt-outs)
instead of the email one, and its quiet hours are strict: the campaign's window, or messaging.yml's when
the campaign says `none`; a message the window would push past its expiry is suppressed at once, with
the reason, rather than left to expire.

An in-app channel (`recipient` "in_app": in_app.py) writes the message into the inbox `attiva serve` shows
on the site, by customer id: no address, no suppression list of an address, no quiet hours.

A push channel (`recipient` "push": fcm_push) is addressed to the customer's active device tokens (push.py): a
customer with none is suppressed ("no push token"); its quiet hours are strict as SMS's are. Tokens the provider
says are gone are retired at once, and each token's answer is recorded in `activation.push_deliveries`.

A campaign with a fallback channel (policy.py) sends a customer who cannot be reached on its channel (no consent
for it; push: no active device token; SMS: no phone number or opted out) the step's fallback template by the
fallback channel instead: the row is then decided as a message of that channel (its consent, suppression list and
quiet hours) under the same caps, one decision per occurrence. The ledger row takes the channel and template
actually used once it is claimed or suppressed, and says why in its reason; a row that went by the fallback is
retried (and recovered) by the fallback.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import polars as pl

from activations.destinations.identifiers import sha256_hex
from activations.messaging import actions, branches, coupons, feedback, journal, ledger, links, push, recovery
from activations.messaging.delivery import Channel, Delivery, OutgoingMessage
from activations.messaging.policy import Settings, Trigger
from activations.messaging.send_time import local_zone
from activations.messaging.templates import TemplateError, Templates, message_context
from activations.messaging.validate import payload_name

CUSTOMER_FIELDS = ("customer_id", "email", "first_name", "last_name", "city", "country", "timezone")
BATCH = 400  # messages claimed (`queued`) together; the send journal says which of them left
RECORD_EVERY = 100  # outcomes folded into the ledger together (each is in the journal as soon as it is known)


@dataclass
class PassReport:
    planned: dict[str, dict[str, int]] = field(default_factory=dict)  # campaign -> state -> rows planned
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # campaign -> sent/failed/suppressed/...
    recovered: recovery.Recovery = field(default_factory=recovery.Recovery)
    # channel -> why it stopped (transport.Verdict.STOP): its messages stay planned for the next pass
    stopped: dict[str, str] = field(default_factory=dict)
    paused: dict[str, actions.Pause] = field(default_factory=dict)  # campaigns not sent this pass (actions.py)

    def add(self, campaign: str, outcome: str, n: int = 1) -> None:
        bucket = self.outcomes.setdefault(campaign, {})
        bucket[outcome] = bucket.get(outcome, 0) + n

    @property
    def sent(self) -> int:
        return sum(o.get("sent", 0) for o in self.outcomes.values())

    def __str__(self) -> str:
        lines = []
        for campaign in sorted(set(self.planned) | set(self.outcomes)):
            planned = ", ".join(f"{n} {s}" for s, n in sorted(self.planned.get(campaign, {}).items())) or "nothing new"
            done = ", ".join(f"{n} {s}" for s, n in sorted(self.outcomes.get(campaign, {}).items())) or "nothing due"
            if campaign in self.paused:
                done = f"none sent, {self.paused[campaign].sentence()}: its due messages stay planned"
            lines.append(f"{campaign:<24} planned: {planned}; due now: {done}")
        lines += [self.why_stopped(channel) for channel in sorted(self.stopped)]
        if str(self.recovered):
            lines.append(str(self.recovered))
        return "\n".join(lines) or "no triggers"

    def stopped_campaigns(self, triggers: list[Trigger]) -> dict[str, str]:
        """campaign -> why it could not send: its channel (or its fallback's) stopped during the pass."""
        return {t.campaign: self.why_stopped(c) for t in triggers for c in reversed(t.channels) if c in self.stopped}

    def why_stopped(self, channel: str) -> str:
        return f"channel {channel!r} stopped, its messages stay planned: {self.stopped[channel]}"


def run_pass(con, triggers: list[Trigger], channels: Mapping[str, Channel], templates: Templates,
             settings: Settings, now: datetime | None = None, *, concurrency: int = 8,
             on_progress: Callable[[int], None] | None = None) -> PassReport:
    """Plan every trigger's new occurrences, then send everything due at `now`."""
    links.unsubscribe_secret()  # no forgeable unsubscribe links: refuse at the start, before anything is planned
    now = (now or datetime.now(UTC)).astimezone(UTC)
    report = PassReport()
    ledger.ensure_ledger(con)
    coupons.ensure_coupons(con)
    feedback.refresh_suppressions(con, now)  # bounces, unsubscribes and complaints reported since the last pass
    feedback.load_sms_feedback(con, now)  # SMS statuses and STOP replies `attiva serve` received since then
    journal_path = journal.path_for(con)
    existed = journal.exists(journal_path)
    sends = journal.SendJournal(journal_path)
    try:
        report.recovered = recovery.recover(con, sends, channels, now, journal_existed=existed)
        for trigger in triggers:
            report.planned[trigger.campaign] = ledger.plan_new(con, trigger, now)
        # A paused campaign goes on planning (no occurrence is lost) but sends nothing: read once, here, since
        # nobody else can write the warehouse (and so pause) while this pass holds it.
        report.paused = {c: p for c, p in actions.paused(con).items() if c in {t.campaign for t in triggers}}
        sms = _addressed_to(channels, "phone")
        due = _due(con, [t for t in triggers if t.campaign not in report.paused], now, sms, _addressed_to(channels, "push"),
                   _addressed_to(channels, "in_app"))
        if due.is_empty():
            return report
        by_campaign = {t.campaign: t for t in triggers}
        due = _decide(con, due, by_campaign, settings, now, report)
        clock = _pass_clock(now)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="attiva-send") as pool:
            for start in range(0, due.height, BATCH):
                _send_batch(con, due.slice(start, BATCH), by_campaign, channels, templates, now, pool, report,
                            clock, sends, settings.product_url)
                if on_progress:
                    on_progress(min(start + BATCH, due.height))
    finally:
        sends.close()
    return report


# -- what is due -----------------------------------------------------------------------------------


def _addressed_to(channels: Mapping[str, Channel], recipient: str) -> set[str]:
    """The channels whose messages go to the customer's `recipient` (email, phone or push)."""
    return {name for name, channel in channels.items() if getattr(channel, "recipient", "email") == recipient}


def _due(con, triggers: list[Trigger], now: datetime, sms: set[str] = frozenset(),
         push_channels: set[str] = frozenset(), in_app: set[str] = frozenset()) -> pl.DataFrame:
    """Planned rows due now, with the customer as they are now and the trigger row as it is now; `sms`: the
    channels addressed to the customer's phone, `push_channels` to their app's device tokens, `in_app` to the
    in-app inbox (by customer id)."""
    frames = []
    def reach(channel: str, consent: str | None, prefix: str = "") -> str:
        return (f"{f'c.{consent}' if consent else 'true'} as {prefix}consented, {channel in sms} as {prefix}sms, "
                f"{channel in push_channels} as {prefix}push, {channel in in_app} as {prefix}in_app, "
                f"'{channel}' as {prefix}channel")

    def reach_by_step(trigger: Trigger) -> str:
        """reach() of each step's own channel and consent, for a journey across channels."""
        def per_step(value) -> str:
            return "case l.step " + " ".join(f"when {s.number} then {value(s)}" for s in trigger.steps) + " end"
        consent = per_step(lambda s: f"c.{trigger.step_consent(s)}" if trigger.step_consent(s) else "true")
        return (f"{consent} as consented, {per_step(lambda s: trigger.step_channel(s) in sms)} as sms, "
                f"{per_step(lambda s: trigger.step_channel(s) in push_channels)} as push, "
                f"{per_step(lambda s: trigger.step_channel(s) in in_app)} as in_app, "
                f"{per_step(lambda s: repr(trigger.step_channel(s)))} as channel")

    for trigger in triggers:
        exit_reason = "t.exit_reason" if "exit_reason" in trigger.columns else "cast(null as string)"
        phone = reach_by_step(trigger) if trigger.switches_channel else reach(trigger.channel, trigger.consent)
        if trigger.fallback:
            phone += ", l.channel as ledger_channel, " + reach(trigger.fallback.channel, trigger.fallback.consent, "fb_")
        if sms & set(trigger.channels) or any("stopped" in s.conditions for s in trigger.steps):
            phone += ", c.phone as c_phone"  # to send an SMS, or to know whether they replied STOP
        frame = con.sql(f"""
            select l.campaign, l.trigger_key, l.step, l.template, l.priority, l.marketing, l.due_at, l.expires_at,
                   l.message_id, l.attempts, l.customer_id, l.occurred_at,
                   t.trigger_key is not null as trigger_holds, {exit_reason} as exit_reason,
                   c.customer_id is not null as customer_known, {phone},
                   {_customer_and_payload(trigger)}
            from activation.message_ledger as l
            left join {trigger.relation} as t on cast(t.trigger_key as string) = l.trigger_key
            left join marts.customers as c on c.customer_id = l.customer_id
            where l.campaign = ? and l.state = 'planned' and l.due_at <= ?""",
                        params=[trigger.campaign, now.replace(tzinfo=None)]).pl()
        if frame.height and trigger.fallback:
            frame = frame.with_columns(pl.col("step").replace_strict(
                {s.number: s.fallback_template for s in trigger.steps}, return_dtype=pl.String).alias("fb_template"))
        if frame.height:
            frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _customer_and_payload(trigger: Trigger) -> str:
    """The columns a message is rendered from: the customer as they are now (`c_*`, marts.customers as c) and
    the trigger row's payload (`p_*`, the trigger as t)."""
    return ", ".join([*(f"c.{f} as c_{f}" for f in CUSTOMER_FIELDS if f != "customer_id"),
                      *(f"t.{c} as p_{c}" for c in trigger.payload_columns)])


def occurrence(con, trigger: Trigger, trigger_key: str) -> dict[str, Any] | None:
    """One of the trigger's current rows as the send path reads it (customer and payload, as `_due` joins
    them), for rendering its message outside a pass (preview.py); None if the trigger has no such row."""
    cursor = con.execute(f"""
        select cast(t.trigger_key as string) as trigger_key, cast(t.customer_id as string) as customer_id,
               t.occurred_at, {_customer_and_payload(trigger)}
        from {trigger.relation} as t
        left join marts.customers as c on c.customer_id = cast(t.customer_id as string)
        where cast(t.trigger_key as string) = ?""", [trigger_key])
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    return dict(zip(names, rows[0], strict=True)) if rows else None


def _decide(con, due: pl.DataFrame, triggers: dict[str, Trigger], settings: Settings, now: datetime,
            report: PassReport) -> pl.DataFrame:
    """Suppress, postpone or keep each due row; returns the rows to send, highest priority first."""
    naive_now = now.replace(tzinfo=None)
    suppressed = set(r[0] for r in con.execute("select email_sha256 from activation.suppression_list").fetchall())
    due = due.with_columns(sha256_hex(pl.col("c_email").str.strip_chars().str.to_lowercase()).alias("email_sha256"))
    if "c_phone" not in due.columns:
        due = due.with_columns(pl.lit(None, pl.String).alias("c_phone"))
    due = due.with_columns(pl.col("sms").fill_null(False),
                           sha256_hex(pl.col("c_phone").str.replace_all(r"\s", "")).alias("phone_sha256"))
    opted_out = pl.DataFrame(con.execute("select phone_sha256, min(reason) from activation.sms_suppression_list "
                                         "group by phone_sha256").fetchall(), schema=["phone_sha256", "sms_opt_out"],
                             orient="row", schema_overrides={"phone_sha256": pl.String, "sms_opt_out": pl.String})
    due = due.join(opted_out, on="phone_sha256", how="left")
    due = branches.decide(con, due, triggers, now, report)
    due = due.with_columns(pl.col("push").fill_null(False), pl.col("in_app").fill_null(False))
    due = due.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in FALLBACK_COLUMNS.items() if c not in due.columns)
    due = _to_fallback(due, push.active_tokens(con, due.filter(pl.col("push") | pl.col("fb_push").fill_null(False))[
        "customer_id"].to_list()))
    sms, on_push = pl.col("sms"), pl.col("push")
    by_email = ~sms & ~on_push & ~pl.col("in_app")  # an in-app message needs no address: it is shown on the site
    reason = (
        pl.when(~pl.col("trigger_holds")).then(pl.lit("the trigger no longer holds"))
        .when(pl.col("exit_reason").is_not_null()).then(pl.lit("exited: ") + pl.col("exit_reason"))
        .when(pl.col("expires_at") < naive_now).then(pl.lit("expired before it could be sent"))
        .when(pl.col("branch").is_not_null()).then(pl.col("branch"))
        .when(~pl.col("customer_known")).then(pl.lit("the customer is no longer in the warehouse"))
        .when(pl.col("consented").is_null() | ~pl.col("consented")).then(pl.lit("no consent at send time"))
        .when(on_push & (pl.col("push_tokens").list.len() == 0)).then(pl.lit("no push token"))
        .when(by_email & pl.col("c_email").is_null()).then(pl.lit("no email address"))
        .when(sms & pl.col("c_phone").is_null()).then(pl.lit("no phone number"))
        .when(by_email & pl.col("email_sha256").is_in(list(suppressed)))
        .then(pl.lit("on the suppression list"))
        .when(sms & pl.col("sms_opt_out").is_not_null()).then(pl.lit("opted out of SMS: ") + pl.col("sms_opt_out"))
    )
    due = due.with_columns(reason.alias("suppressed_because"))
    skipped = (pl.col("suppressed_because") == pl.col("branch")).fill_null(False)  # a branch not taken
    _suppress(con, due.filter(skipped), "suppressed_because", now, report, state="skipped")
    _suppress(con, due.filter(pl.col("suppressed_because").is_not_null() & ~skipped), "suppressed_because", now,
              report)
    due = due.filter(pl.col("suppressed_because").is_null())

    # Quiet hours, in each customer's timezone: postpone to the end of the window. SMS and push are strict:
    # always a window (the campaign's, else messaging.yml's), and never postponed past the expiry: suppressed
    # now, saying so. In-app messages have none: they are shown only while the visitor is on the site.
    due = due.with_columns((pl.col("sms") | pl.col("push")).alias("strict"))
    postponed_to = [None if on_site else
                    _after_quiet_hours(triggers[c].quiet_hours or (settings.quiet_hours if strict else None), tz,
                                       naive_now)
                    for c, tz, strict, on_site in zip(due["campaign"].to_list(), due["c_timezone"].to_list(),
                                                      due["strict"].to_list(), due["in_app"].to_list(), strict=True)]
    due = due.with_columns(pl.Series("postpone_to", postponed_to, dtype=pl.Datetime("us")))
    past_expiry = pl.col("strict") & (pl.col("postpone_to") > pl.col("expires_at"))
    too_late = due.filter(past_expiry)
    if too_late.height:
        _suppress(con, too_late.with_columns(
            (pl.lit("quiet hours in the customer's timezone until ") + pl.col("postpone_to").dt.strftime("%H:%M UTC")
             + pl.lit(", after the step expires: ")
             + pl.when(pl.col("sms")).then(pl.lit("an SMS")).otherwise(pl.lit("a push"))
             + pl.lit(" is never sent in quiet hours")).alias("why")),
                  "why", now, report)
        due = due.filter(~past_expiry)
    later = due.filter(pl.col("postpone_to").is_not_null())
    if later.height:
        ledger.update(con, later.select(*ledger.KEY, pl.col("postpone_to").alias("due_at"),
                                        pl.lit("quiet hours in the customer's timezone").alias("reason")), now)
        for campaign, n in later.group_by("campaign").len().iter_rows():
            report.add(campaign, "postponed (quiet hours)", n)
    due = due.filter(pl.col("postpone_to").is_null())
    return _apply_caps(con, due, settings, now, report)


FALLBACK_COLUMNS = {"fb_channel": pl.String, "fb_template": pl.String, "fb_consented": pl.Boolean,
                    "fb_sms": pl.Boolean, "fb_push": pl.Boolean, "fb_in_app": pl.Boolean, "ledger_channel": pl.String}


def _to_fallback(due: pl.DataFrame, tokens: dict[str, list[str]]) -> pl.DataFrame:
    """Rows of a campaign with a fallback whose customer cannot be reached on its channel become rows of the
    fallback channel (its consent, address, template), with `fallback_note` saying so; a row already sent by the
    fallback once (now retried) stays with it. `push_tokens`: the row's channel's device tokens, if push."""
    sms, on_push = pl.col("sms"), pl.col("push")
    has_token = pl.col("customer_id").is_in([c for c, found in tokens.items() if found])
    gap = (pl.when(pl.col("ledger_channel") == pl.col("fb_channel")).then(pl.lit("retried where it first went"))
           .when(pl.col("consented").is_null() | ~pl.col("consented")).then(pl.lit("no consent"))
           .when(on_push & ~has_token).then(pl.lit("no push token"))
           .when(sms & pl.col("c_phone").is_null()).then(pl.lit("no phone number"))
           .when(sms & pl.col("sms_opt_out").is_not_null()).then(pl.lit("opted out of SMS")))
    due = due.with_columns(pl.when(pl.col("fb_channel").is_not_null() & gap.is_not_null()).then(
        pl.lit("by the fallback ") + pl.col("fb_channel") + pl.lit(" (") + pl.col("channel") + pl.lit(": ") + gap
        + pl.lit(")")).alias("fallback_note"))
    by_fallback = pl.col("fallback_note").is_not_null()
    due = due.with_columns(pl.when(by_fallback).then(pl.col(f"fb_{c}")).otherwise(pl.col(c)).alias(c)
                           for c in ("channel", "template", "consented", "sms", "push", "in_app"))
    return due.with_columns(pl.Series("push_tokens", [tokens.get(c, []) if p else [] for c, p in zip(
        due["customer_id"].to_list(), due["push"].to_list(), strict=True)], dtype=pl.List(pl.String)))


def _after_quiet_hours(window, timezone: str | None, now: datetime) -> datetime | None:
    """The UTC time (naive) the quiet window ends, if local time in `timezone` is inside it at `now`."""
    if window is None:
        return None
    local = now.replace(tzinfo=UTC).astimezone(local_zone(timezone))
    if not window.contains(local.time()):
        return None
    end = local.replace(hour=window.end.hour, minute=window.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(UTC).replace(tzinfo=None)


def _apply_caps(con, due: pl.DataFrame, settings: Settings, now: datetime, report: PassReport) -> pl.DataFrame:
    """Marketing messages per customer within the caps, highest priority first; the rest suppressed."""
    caps = settings.caps
    naive_now = now.replace(tzinfo=None)
    # A message of unknown outcome may have reached the person: it counts, so a crash never over-messages.
    history = con.sql("""
        select customer_id,
               sum(case when coalesce(sent_at, sending_at) > ? then 1 else 0 end) as day,
               sum(case when coalesce(sent_at, sending_at) > ? then 1 else 0 end) as week
        from activation.message_ledger where state in ('sent', 'unknown') and marketing group by customer_id""",
                      params=[naive_now - timedelta(days=1), naive_now - timedelta(days=7)]).pl()
    due = due.sort(["priority", "due_at", "campaign"], descending=[True, False, False])
    due = due.join(history, on="customer_id", how="left").with_columns(
        pl.col("day").fill_null(0), pl.col("week").fill_null(0))
    rank = pl.when(pl.col("marketing")).then(pl.col("marketing").cast(pl.Int32).cum_sum().over("customer_id"))
    due = due.with_columns(rank.alias("nth"))
    over_day = (pl.col("day") + pl.col("nth") > caps.per_day) if caps.per_day is not None else pl.lit(False)
    over_week = (pl.col("week") + pl.col("nth") > caps.per_week) if caps.per_week is not None else pl.lit(False)
    capped = pl.col("marketing") & (over_day | over_week)
    due = due.with_columns(
        pl.when(capped).then(pl.lit(f"frequency cap ({caps.per_day}/day, {caps.per_week}/week): "
                                    "a higher-priority or earlier message was sent")).alias("capped_because"))
    _suppress(con, due.filter(pl.col("capped_because").is_not_null()), "capped_because", now, report)
    return due.filter(pl.col("capped_because").is_null())


def _suppress(con, rows: pl.DataFrame, reason_column: str, now: datetime, report: PassReport,
              state: str = "suppressed") -> None:
    """Rows suppressed (or `skipped`: a journey's branch not taken) with their reason; the channel and template
    they were decided for recorded."""
    if rows.is_empty():
        return
    ledger.update(con, rows.select(*ledger.KEY, "channel", "template", pl.lit(state).alias("state"),
                                   _with_note(pl.col(reason_column)).alias("reason")), now)
    for campaign, n in rows.group_by("campaign").len().iter_rows():
        report.add(campaign, state, n)


# -- rendering and sending -------------------------------------------------------------------------


def recommendations(con, customer_ids: list[str], product_url: str | None) -> dict[str, list[dict[str, Any]]]:
    if not customer_ids:
        return {}
    view = f"_attiva_rec_{uuid.uuid4().hex[:8]}"
    con.register(view, pl.DataFrame({"customer_id": customer_ids}).to_arrow())
    try:
        rows = con.sql(f"""
            select r.customer_id, r.product_id, p.product_name as name, p.price
            from marts.customer_recommendations as r
            join {view} as w on w.customer_id = r.customer_id
            join marts.products as p on p.product_id = r.product_id
            where r.recommendation_rank <= 3
            order by r.customer_id, r.recommendation_rank""").fetchall()
    finally:
        con.unregister(view)
    found: dict[str, list[dict[str, Any]]] = {}
    for customer_id, product_id, name, price in rows:
        found.setdefault(customer_id, []).append(
            {"product_id": product_id, "name": name, "price": float(price) if price is not None else None,
             "url": product_url.replace("{product_id}", quote(str(product_id), safe="")) if product_url else None})
    return found


def _unsubscribe_url(customer_id: str, campaign: str) -> str:
    return links.unsubscribe_url(links.unsubscribe_base_url(), customer_id, campaign, links.unsubscribe_secret())


def compose(row: dict[str, Any], trigger: Trigger, channel: Channel | None, templates: Templates,
            recommended: list[dict[str, Any]], coupon: dict[str, Any] | None, unsubscribe: str) -> OutgoingMessage:
    """One message rendered from its row (`message_id`, `customer_id`, `step`, `template`, the `c_*` customer
    and `p_*` payload columns, and `channel` when it goes by the trigger's fallback): what a pass sends, and what
    the console previews and test-sends (preview.py). TemplateError if its template cannot render."""
    rendered = templates.render(row["template"], _context(row, trigger, recommended, coupon,
                                                          row.get("channel") or trigger.channel, unsubscribe))
    name = " ".join(p for p in (row.get("c_first_name"), row.get("c_last_name")) if p) or None
    return OutgoingMessage(
        message_id=row["message_id"], to_email=row.get("c_email") or "", to_phone=row.get("c_phone") or "",
        to_tokens=tuple(row.get("push_tokens") or ()),
        to_name=name,
        from_email=getattr(channel, "from_email", ""), from_name=getattr(channel, "from_name", ""),
        subject=rendered.subject, html=rendered.html,
        text=rendered.text, campaign=trigger.campaign, customer_id=row["customer_id"],
        step=int(row["step"]), priority=int(row.get("priority") or 0), link=rendered.link,
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                 # the variant, so an ESP's engagement reports can be read per A/B variant
                 "X-Attiva-Template": row["template"]})


def _context(row: dict[str, Any], trigger: Trigger, recommended: list[dict[str, Any]], coupon, channel_name: str,
             unsubscribe_url: str) -> dict[str, Any]:
    customer = {f: row.get(f"c_{f}") for f in CUSTOMER_FIELDS if f != "customer_id"}
    customer["customer_id"] = row["customer_id"]
    return message_context(
        customer=customer, campaign=trigger.campaign, step=row["step"], channel=channel_name,
        trigger={payload_name(c): _parsed(c, row.get(f"p_{c}")) for c in trigger.payload_columns},
        recommendations=recommended, coupon=coupon, unsubscribe_url=unsubscribe_url)


def _parsed(column: str, value: Any) -> Any:
    """`<x>_json` payload columns hold JSON (nested data stays portable across warehouses)."""
    if column.endswith("_json") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _pass_clock(now: datetime) -> Callable[[], datetime]:
    """`now` plus the time since the pass started: when a message was accepted, on the clock the caps and
    measurement read (as_of), also when a run is pinned to another time than the wall clock's."""
    started, naive_now = time.monotonic(), now.replace(tzinfo=None)
    return lambda: naive_now + timedelta(seconds=time.monotonic() - started)


def _send_batch(con, batch: pl.DataFrame, triggers: dict[str, Trigger], channels: Mapping[str, Channel],
                templates: Templates, now: datetime, pool: ThreadPoolExecutor, report: PassReport,
                clock: Callable[[], datetime], sends: journal.SendJournal, product_url: str | None) -> None:
    naive_now = now.replace(tzinfo=None)
    rows = batch.to_dicts()
    found = recommendations(con, sorted({r["customer_id"] for r in rows}), product_url)
    messages: list[tuple[dict[str, Any], OutgoingMessage]] = []
    failed: list[dict[str, Any]] = []
    coupon_codes: dict[str, str] = {}
    for row in rows:
        trigger = triggers[row["campaign"]]
        if row["channel"] in report.stopped:  # left planned as it is: no coupon, no claim
            report.add(row["campaign"], HELD)
            continue
        step = trigger.steps[row["step"] - 1]
        coupon = None
        if step.coupon is not None:  # issued before sending, idempotently: a retry reuses the code
            coupon = coupons.issue(con, row["customer_id"], trigger.campaign, row["trigger_key"], row["step"],
                                   step.coupon.discount_pct, naive_now, step.coupon.valid_days)
            coupon_codes[row["message_id"]] = coupon["code"]
        unsubscribe = _unsubscribe_url(row["customer_id"], trigger.campaign)
        try:
            message = replace(compose(row, trigger, channels[row["channel"]], templates,
                                      found.get(row["customer_id"], []), coupon, unsubscribe), sent_at=clock())
        except TemplateError as exc:
            failed.append({**{k: row[k] for k in ledger.KEY}, "state": "failed", "reason": f"template: {exc}"})
            continue
        messages.append((row, message))
    if failed:
        ledger.update(con, pl.DataFrame(failed, infer_schema_length=None), now)
        for row in failed:
            report.add(row["campaign"], "failed")
    if not messages:
        return
    # Claimed in the journal, then in the ledger, before any message leaves; each message is then
    # journaled `sending` right before its channel call and with its outcome right after.
    keys = [tuple(r[k] for k in ledger.KEY) for r, _ in messages]
    sends.queue(keys)
    claim = pl.DataFrame([{**{k: r[k] for k in ledger.KEY}, "state": "queued", "reason": None,
                           "channel": r["channel"], "template": r["template"],  # the fallback's, if it went by it
                           "coupon_code": coupon_codes.get(r["message_id"])}
                          for r, _ in messages], infer_schema_length=None)  # coupons: None for most rows
    ledger.update(con, claim, now)

    def deliver(item: tuple[dict[str, Any], OutgoingMessage]) -> tuple[dict[str, Any], str]:
        row, message = item
        key = {k: row[k] for k in ledger.KEY}
        channel = row["channel"]
        if channel in report.stopped:  # stopped by an earlier message of this pass: this one never leaves
            held = {**key, "state": "planned", "reason": f"held: channel stopped: {report.stopped[channel]}",
                    "sent_at": None, "provider_id": None, "sending_at": None, "attempts_add": 0}
            sends.outcome(tuple(key.values()), "planned", held["reason"], None, clock())
            return held, HELD
        started = clock()
        sends.sending(tuple(key.values()), started)
        try:
            delivery = channels[channel].send(message)
        except Exception as exc:  # a broken channel must not leave the row in flight
            delivery = Delivery(ok=False, permanent=False, status=None, reason=f"{type(exc).__name__}: {exc}",
                                provider_id=None)
        if delivery.stop:
            report.stopped.setdefault(channel, delivery.reason or "stopped")
        if delivery.opted_out:
            opted_out.append((message.to_phone, message.message_id))
        if delivery.retired_tokens or delivery.push_results:
            pushed.append((message.message_id, delivery))
        outcome = {**key, **_outcome(delivery, clock), "sending_at": started, "attempts_add": 1}
        if note := row.get("fallback_note"):  # `attiva messages why` says it went by the fallback, and why
            outcome["reason"] = f"{outcome['reason']}, {note}" if outcome["reason"] else note
        sends.outcome(tuple(key.values()), outcome["state"], outcome["reason"], outcome["provider_id"],
                      outcome["sent_at"] or started)
        return outcome, HELD if delivery.stop else REPORTED[outcome["state"]]

    outcomes: list[tuple[dict[str, Any], str]] = []
    opted_out: list[tuple[str, str]] = []  # (number, message id) the channel said opted out; appended by threads
    pushed: list[tuple[str, Delivery]] = []  # (message id, a push channel's answer); appended by threads

    def record() -> None:
        if opted_out:  # pop: a sending thread may append meanwhile
            feedback.record_sms_opt_outs(con, [opted_out.pop(0) for _ in range(len(opted_out))], now)
        if pushed:
            answers = [pushed.pop(0) for _ in range(len(pushed))]
            push.retire(con, [t for _, d in answers for t in d.retired_tokens], "unregistered", now)
            push.record_results(con, [(m, r) for m, d in answers for r in d.push_results], now)
        ledger.update(con, pl.DataFrame([o for o, _ in outcomes], schema=OUTCOME_SCHEMA), now)
        for outcome, label in outcomes:
            report.add(outcome["campaign"], label)
        outcomes.clear()

    for future in as_completed([pool.submit(deliver, item) for item in messages]):
        outcomes.append(future.result())
        if len(outcomes) >= RECORD_EVERY:
            record()
    if outcomes:
        record()
    sends.clear()  # every outcome of the batch is in the ledger now


REPORTED = {"sent": "sent", "failed": "failed", "planned": "retry later", "unknown": "unknown",
            "suppressed": "suppressed"}
HELD = "held (channel stopped)"
OUTCOME_SCHEMA = {"campaign": pl.String, "trigger_key": pl.String, "step": pl.Int32, "state": pl.String,
                  "reason": pl.String, "sent_at": pl.Datetime("us"), "provider_id": pl.String,
                  "sending_at": pl.Datetime("us"), "attempts_add": pl.Int32}


def _with_note(reason: pl.Expr) -> pl.Expr:
    """A suppression's reason, saying which fallback it was decided for (`fallback_note`), if any."""
    return pl.when(pl.col("fallback_note").is_not_null()).then(reason + pl.lit(", ") + pl.col("fallback_note")
                                                              ).otherwise(reason)


def _outcome(delivery: Delivery, clock: Callable[[], datetime]) -> dict[str, Any]:
    """The ledger's state and reason for what the channel answered."""
    if delivery.ok:
        return {"state": "sent", "sent_at": clock(), "provider_id": delivery.provider_id, "reason": None}
    none = {"sent_at": None, "provider_id": None}
    if delivery.opted_out:  # the recipient said STOP to this sender: not a failure, and never again
        return {**none, "state": "suppressed", "reason": f"opted out of SMS: {delivery.reason}"}
    if delivery.permanent:
        return {**none, "state": "failed", "reason": f"refused: {delivery.reason}"}
    if delivery.stop:  # not the message's fault: it goes once the channel is fixed or back
        return {**none, "state": "planned", "reason": f"channel stopped: {delivery.reason}"}
    if "outcome unknown" in (delivery.reason or ""):  # it may have gone out: asked about, or never resent
        return {**none, "state": "unknown", "reason": delivery.reason}
    # transient: planned again, retried by the next pass until the step expires
    return {**none, "state": "planned", "reason": f"will retry: {delivery.reason}"}
