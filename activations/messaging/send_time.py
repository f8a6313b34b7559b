"""Send-time optimization: a step of a campaign declaring `send_time: best_hour` is due at the
customer's best hour of day instead of as soon as its delay has passed.

The hour comes from marts.customer_best_send_hour (the local hour of the customer's most opens and
clicks, else their segment's). A step moves forward to the next time the customer's clock shows it,
counted from its due time (or from now, when planned late), only if that is before the step expires,
outside the campaign's quiet hours and before the next step of the journey is due, so a journey keeps
its order; otherwise it stays as soon as due. The ledger's `timed_by` records which, so measurement
can compare (docs/messaging.md#send-time-optimization). Decided once, when the step is planned.

With `send_time_control: <share>` that share of the campaign's customers, drawn by a hash of campaign and
customer (the same ones every time, whatever their history), stays as soon as due (`timed_by` control):
the open rates of the two groups then differ only by the hour, which the report shows with its interval.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import polars as pl

from activations import warehouse
from activations.messaging.policy import Trigger

AS_SOON_AS_DUE, BEST_HOUR, SEGMENT_HOUR, CONTROL = "as_soon_as_due", "best_hour", "segment_hour", "control"
TIMED_BY = {"own_history": BEST_HOUR, "segment": SEGMENT_HOUR}  # the mart's hour_from -> the ledger's timed_by
DEFAULT_ZONE = "Europe/Rome"  # marts.customers' own default


@cache
def local_zone(name: str | None) -> ZoneInfo:
    """The customer's timezone; an unknown or missing one is the project's default, as in the mart."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def next_best_hour(start: datetime, hour: int, zone: ZoneInfo) -> datetime:
    """The first moment from `start` (naive UTC) when the clock in `zone` shows `hour` (naive UTC):
    `start` itself when it is already within that hour."""
    local = start.replace(tzinfo=UTC).astimezone(zone)
    if local.hour == hour:
        return start
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:  # same tzinfo: compared as wall-clock times, so a DST day is still one day
        candidate = (local + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return candidate.astimezone(UTC).replace(tzinfo=None)


def retime(con, rows: pl.DataFrame, trigger: Trigger, now: datetime) -> pl.DataFrame:
    """Planned rows (customer_id, step, occurred_at, due_at, expires_at) with `due_at` moved to each
    customer's best hour where the policy asks for it and allows it, and `timed_by` saying why."""
    if trigger.send_time != BEST_HOUR or rows.is_empty():
        return rows.with_columns(pl.lit(AS_SOON_AS_DUE).alias("timed_by"))
    hours = _best_hours(con, rows["customer_id"].unique())
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    next_delay = {s.number: trigger.steps[s.number].delay for s in trigger.steps[:-1]}
    waits = {s.number for s in trigger.steps if s.when}  # sent as soon as the customer acts: never moved
    due_at, timed_by = [], []
    for customer_id, step, occurred_at, due, expires_at in rows.select(
            "customer_id", "step", "occurred_at", "due_at", "expires_at").iter_rows():
        if step in waits:
            due_at.append(due)
            timed_by.append(AS_SOON_AS_DUE)
            continue
        if in_control(trigger, customer_id):
            due_at.append(due)
            timed_by.append(CONTROL)
            continue
        found = hours.get(customer_id)
        moved = None
        if found is not None:
            zone, hour, hour_from = found
            candidate = next_best_hour(max(due, naive_now), hour, zone)
            local = candidate.replace(tzinfo=UTC).astimezone(zone).time()
            before_next_step = step not in next_delay or candidate < occurred_at + next_delay[step]
            if (candidate < expires_at and before_next_step
                    and not (trigger.quiet_hours and trigger.quiet_hours.contains(local))):
                moved = candidate
        due_at.append(moved or due)
        timed_by.append(TIMED_BY[found[2]] if moved else AS_SOON_AS_DUE)
    return rows.with_columns(pl.Series("due_at", due_at, dtype=rows.schema["due_at"]),
                             pl.Series("timed_by", timed_by, dtype=pl.String))


def in_control(trigger: Trigger, customer_id: str) -> bool:
    """Whether the customer is in the campaign's send-time control group: a hash of its own, so the group is
    independent of the holdout's and the A/B test's draws."""
    if not trigger.send_time_control:
        return False
    digest = hashlib.sha256(f"{trigger.campaign}\x1fsend_time\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < trigger.send_time_control


def _best_hours(con, customer_ids: pl.Series) -> dict[str, tuple[ZoneInfo, int, str]]:
    """customer_id -> (timezone, best hour, where it comes from), for those who have one. A warehouse
    built before the mart existed has none: every step then stays as soon as due."""
    if not warehouse.has_table(con, "marts", "customer_best_send_hour"):
        return {}
    view = f"_attiva_hours_{uuid.uuid4().hex[:8]}"
    con.register(view, pl.DataFrame({"customer_id": customer_ids}).to_arrow())
    try:
        found = con.execute(f"""
            select h.customer_id, h.timezone, h.best_hour, h.hour_from
            from marts.customer_best_send_hour as h
            join {view} as w on w.customer_id = h.customer_id
            where h.best_hour is not null""").fetchall()
    finally:
        con.unregister(view)
    return {c: (local_zone(tz), int(hour), hour_from) for c, tz, hour, hour_from in found}
