"""The message ledger: one row per trigger occurrence and journey step, in the warehouse.

States: planned -> queued -> sent | failed | unknown; planned -> suppressed (with the reason)
or held_out (the customer is in the campaign's holdout). A row is planned once, whatever
how often triggers are evaluated, so nothing is ever planned twice. `reason` says why, in words.

A pass claims a batch (`queued`) in one statement and records each message in the send journal
(journal.py) right before and after its channel call. A pass killed at any point leaves at most
the messages then in flight without a known outcome (`unknown`); the next pass settles the rest
and asks the channels that can tell about the unknown ones (recovery.py). What each channel
guarantees: docs/messaging-guarantees.md.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import polars as pl

from activations import warehouse
from activations.engine.dialect import add_missing_columns
from activations.messaging import allocation, send_time
from activations.messaging.policy import Step, Trigger

TABLES = {
    "message_ledger": """
        campaign string, trigger_key string, step integer, customer_id string, channel string, template string,
        state string, reason string, priority integer, marketing boolean, occurred_at timestamp,
        due_at timestamp, expires_at timestamp, message_id string, provider_id string, coupon_code string,
        attempts integer, planned_at timestamp, sending_at timestamp, sent_at timestamp, updated_at timestamp,
        variant_probability double,
        timed_by string""",
    # Hashed emails nobody may write to again (`attiva forget`, complaints, a global list).
    "suppression_list": "email_sha256 string, reason string, added_at timestamp",
    # Hashed phone numbers no SMS may go to again (an SMS STOP reply, Twilio's 21610, an unreachable number):
    # SHA-256 of the E.164 number, as the send step hashes it (feedback.py).
    "sms_suppression_list": "phone_sha256 string, reason string, added_at timestamp",
    # What the SMS provider reported back (status callbacks, STOP replies), one row per event (feedback.py).
    "sms_events": """
        event_id string, message_id string, provider_id string, phone_sha256 string, event_type string,
        error_code string, occurred_at timestamp, loaded_at timestamp, source_file string""",
    # Push device tokens never sent to again (FCM's UNREGISTERED, `attiva forget`), as SHA-256 (push.py).
    "push_tokens_retired": "token_sha256 string, reason string, retired_at timestamp",
    # What the push provider said about each device token of each message (push.py).
    "push_deliveries": "message_id string, token_sha256 string, outcome string, detail string, recorded_at timestamp",
    # Pause, resume and test sends, by whom and when (actions.py): what the send path honours and an audit.
    "campaign_actions": """
        campaign string, action string, actor string, acted_at timestamp, step integer, template string,
        customer_id string, sent_to string, message_id string, outcome string""",
}
KEY = ("campaign", "trigger_key", "step")
# Columns added after the ledger first shipped: ledgers written by an older version gain them (null in old
# rows). variant_probability: the chance an A/B step's allocation gave the template chosen (null: one
# template). timed_by: what set due_at, as_soon_as_due, best_hour or segment_hour (send_time.py).
ADDED_COLUMNS = {"message_ledger": {"variant_probability": "double", "timed_by": "string"}}


def ensure_ledger(con) -> None:
    con.execute("create schema if not exists activation")
    for name, columns in TABLES.items():
        con.execute(f"create table if not exists activation.{name} ({columns})")
    for name, added in ADDED_COLUMNS.items():
        add_missing_columns(con, f"activation.{name}", added)


def message_id(campaign: str, trigger_key: str, step: int) -> str:
    """Stable per ledger row: the Message-ID a resend would carry, and how the SMTP log is matched."""
    digest = hashlib.sha256(f"{campaign}\x1f{trigger_key}\x1f{step}".encode()).hexdigest()[:20]
    return f"{campaign}.{digest}.{step}@attiva"


def in_holdout(campaign: str, customer_ids: pl.Series, share: float) -> pl.Series:
    """Deterministic per customer and campaign: the same people are held out on every run."""
    if share <= 0:
        return pl.Series([False] * len(customer_ids), dtype=pl.Boolean)
    bucket = [int(hashlib.sha256(f"{campaign}\x1f{c}".encode()).hexdigest()[:8], 16) / 0x100000000
              for c in customer_ids.to_list()]
    return pl.Series(bucket) < share


def variant(campaign: str, customer_ids: pl.Series, templates: tuple[str, ...]) -> pl.Series:
    """An A/B test's template per customer: deterministic per customer and campaign, evenly spread, and
    drawn apart from the holdout (another hash), so both variants have the same share held out."""
    if len(templates) == 1:
        return pl.Series([templates[0]] * len(customer_ids), dtype=pl.String)
    return pl.Series([templates[int(hashlib.sha256(f"{campaign}\x1f{c}\x1fvariant".encode()).hexdigest()[:8], 16)
                                % len(templates)] for c in customer_ids.to_list()], dtype=pl.String)


def _variants(con, campaign: str, step: Step, customer_ids: pl.Series, now: datetime) -> tuple[pl.Series, ...]:
    """The step's template per customer (held out too: their would-be variant) and the probability it had."""
    k = len(step.templates)
    if k == 1:
        templates, probability = variant(campaign, customer_ids, step.templates), pl.Series([None] * len(customer_ids))
    elif step.allocation == "thompson":
        shares = allocation.shares(con, campaign, step.number, step.templates, step.reward, now)
        templates, probability = allocation.choose(campaign, step.number, customer_ids, step.templates, shares)
    else:
        templates, probability = variant(campaign, customer_ids, step.templates), pl.Series([1 / k] * len(customer_ids))
    return templates.alias("template"), probability.cast(pl.Float64).alias("variant_probability")


def plan_new(con, trigger: Trigger, now: datetime) -> dict[str, int]:
    """Ledger rows for occurrences seen for the first time, one per step; returns counts by state.

    Occurrences already exited, or whose last step would be past its expiry, are not planned.
    """
    ensure_ledger(con)
    last_delay = trigger.steps[-1].delay
    exit_filter = "and t.exit_reason is null" if "exit_reason" in trigger.columns else ""
    fresh = con.sql(f"""
        select cast(t.trigger_key as string) as trigger_key, cast(t.customer_id as string) as customer_id,
               t.occurred_at
        from {trigger.relation} as t
        where t.customer_id is not null and t.trigger_key is not null {exit_filter}
          and not exists (select 1 from activation.message_ledger as l
                          where l.campaign = ? and l.trigger_key = cast(t.trigger_key as string))""",
                    params=[trigger.campaign]).pl()
    now_naive = now.replace(tzinfo=None)
    fresh = fresh.unique("trigger_key").filter(
        pl.col("occurred_at") + last_delay + trigger.expires_after > now_naive)
    if fresh.is_empty():
        return {}
    held = in_holdout(trigger.campaign, fresh["customer_id"], trigger.holdout)
    fresh = fresh.with_columns(held.alias("held_out"))
    rows = pl.concat([
        fresh.with_columns(
            pl.lit(step.number, pl.Int32).alias("step"),
            pl.lit(trigger.step_channel(step)).alias("channel"),
            *_variants(con, trigger.campaign, step, fresh["customer_id"], now),
            (pl.col("occurred_at") + trigger.due_after(step)).alias("due_at"),
            (pl.col("occurred_at") + step.delay + trigger.expires_after).alias("expires_at"),
        ) for step in trigger.steps])
    rows = send_time.retime(con, rows, trigger, now)
    rows = rows.with_columns(
        pl.when(pl.col("held_out")).then(pl.lit("held_out")).otherwise(pl.lit("planned")).alias("state"),
        pl.when(pl.col("held_out")).then(pl.lit(f"holdout ({trigger.holdout:.0%} of customers)")).alias("reason"),
        pl.struct("trigger_key", "step").map_elements(
            lambda r: message_id(trigger.campaign, r["trigger_key"], r["step"]), return_dtype=pl.String
        ).alias("message_id"),
    )
    view = f"_attiva_plan_{uuid.uuid4().hex[:8]}"
    con.register(view, rows.to_arrow())
    try:
        con.execute(f"""
            insert into activation.message_ledger
                (campaign, trigger_key, step, customer_id, channel, template, state, reason, priority, marketing,
                 occurred_at, due_at, expires_at, message_id, attempts, planned_at, updated_at, variant_probability,
                 timed_by)
            select ?, trigger_key, step, customer_id, channel, template, state, reason, ?, ?, occurred_at, due_at,
                   expires_at, message_id, 0, ?, ?, variant_probability, timed_by
            from {view}""", [trigger.campaign, trigger.priority, trigger.marketing, now_naive, now_naive])
    finally:
        con.unregister(view)
    return dict(rows.group_by("state").len().iter_rows())


def update(con, changes: pl.DataFrame, now: datetime) -> None:
    """Apply per-row changes (campaign, trigger_key, step + any of state, reason, due_at, provider_id,
    coupon_code, sent_at, sending_at, channel, template, attempts_add) in one statement."""
    if changes.is_empty():
        return
    view = f"_attiva_upd_{uuid.uuid4().hex[:8]}"
    settable = [c for c in ("state", "reason", "due_at", "provider_id", "coupon_code", "sent_at", "sending_at",
                            "channel", "template")
                if c in changes.columns]
    assignments = [f"{c} = coalesce(c.{c}, l.{c})" if c in ("coupon_code", "provider_id") else f"{c} = c.{c}"
                   for c in settable]
    if "attempts_add" in changes.columns:
        assignments.append("attempts = l.attempts + c.attempts_add")
    con.register(view, changes.to_arrow())
    try:
        # Portable UPDATE ... FROM; the key columns identify one ledger row.
        con.execute(f"""
            update activation.message_ledger as l set {", ".join(assignments)}, updated_at = ?
            from {view} as c
            where l.campaign = c.campaign and l.trigger_key = c.trigger_key and l.step = c.step""",
                    [now.replace(tzinfo=None)])
    finally:
        con.unregister(view)


def counts(con) -> dict[str, dict[str, int]]:
    """Ledger rows per campaign and state (for Dagster metadata and the CLI); read-only is fine."""
    if not warehouse.has_table(con, "activation", "message_ledger"):
        return {}
    out: dict[str, dict[str, int]] = {}
    for campaign, state, n in con.execute(
            "select campaign, state, count(*) from activation.message_ledger group by campaign, state").fetchall():
        out.setdefault(campaign, {})[state] = n
    return out
