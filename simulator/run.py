"""`attiva simulate`: the pipeline over simulated days, against customers who answer what it sends.

Each simulated day the world (simulator/world.py) reads the mail Attiva sent the day before
(the sandbox's SMTP store), lives one day (organic purchases, and those the messages caused) and
lands it as the shop's export; every `every` days the whole pipeline runs as of the world's clock
(ATTIVA_AS_OF): ingest, dbt, quality gates, syncs and messages, the report. At the end the
measured uplift per campaign (measurement.campaign_uplift) is printed beside what the world planted.

The first call generates the customers when the landing folder is empty; later calls go on from
where the world stopped (its clock is in `<landing>/_truth/simulation/state.json`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from activations import settings, warehouse
from generator.clock import epoch_seconds
from simulator import days as world_days
from simulator.send_time_check import describe_send_times, send_time_checks
from simulator.through_the_day import send_through_the_day, set_clock
from simulator.world import HABIT_OPEN_LIFT, OPEN_RATE, VARIANT_CLICKS, WINDOW_DAYS, expected_uplift, load


@dataclass(frozen=True)
class CampaignCheck:
    """One campaign's measured uplift beside what the world planted for the same customers."""

    campaign: str
    treated: int
    holdout: int
    planted_response: float  # mean chance a received message caused a purchase
    expected: float  # the uplift a holdout comparison should find, given who was sent it
    measured: float | None
    low: float | None
    high: float | None
    too_small: bool

    @property
    def covered(self) -> bool | None:
        if self.measured is None or self.too_small or self.low is None or self.high is None:
            return None
        return self.low <= self.expected <= self.high


@dataclass(frozen=True)
class Simulation:
    checks: list[CampaignCheck]
    failed_steps: list[str]  # over every pipeline run of the simulation

    @property
    def ok(self) -> bool:
        return not self.failed_steps


def simulate(days: int, every: int = 1, customers: int = 20_000, seed: int = 42,
             start: datetime | None = None, uplift: dict[str, float] | None = None) -> Simulation:
    """Run `days` simulated days; the pipeline every `every` days and on the last one. `uplift` plants the
    effect of the campaigns it names (a rehearsal's), in place of the world's own."""
    from demo.pipeline import generate_if_empty, pipeline_sandbox, run_everything

    if days < 1 or every < 1:
        raise ValueError("days and every must be at least 1")
    landing = settings.landing_path()
    state = world_days.State.read(landing)
    clock = (datetime.fromtimestamp(state.clock, UTC) if state else (start or settings.as_of())).replace(microsecond=0)
    clock = after_the_run(clock)  # a run made at this clock before these days (`make demo`'s first)
    os.environ["ATTIVA_AS_OF"] = clock.isoformat()
    generate_if_empty(customers, seed)
    fresh = state is None
    state = state or world_days.State(clock=epoch_seconds(clock))
    state.clock = max(state.clock, epoch_seconds(clock))
    world = load(landing, seed, state.origin, uplift)
    world_days.write_traits(landing, world)
    mailbox = settings.data_dir() / "sandbox" / "smtp" / "messages.jsonl"
    failed: list[str] = []
    world_days.keep_promotions_running(landing, state.clock, state.clock + (days + WINDOW_DAYS) * world_days.DAY)
    sandbox_state = mailbox.parent.parent
    plant_recipients(sandbox_state, world)
    set_clock(sandbox_state, clock)
    with pipeline_sandbox():
        if fresh and not _has_run():
            print(f"==> day 0, {clock:%Y-%m-%d %H:%M} UTC: the first pipeline run")
            failed += _check(run_everything())
            clock = after_the_run(clock)
            state.clock = epoch_seconds(clock)
        _through_the_day(clock, clock + timedelta(days=every), sandbox_state)  # after day 0, here or the demo's
        for day in range(1, days + 1):
            started = time.monotonic()
            read, caused = world_days.receive(landing, world, state, mailbox, seed)
            until = datetime.fromtimestamp(state.clock, UTC) + timedelta(days=1)
            organic, responses, _ = world_days.live_until(landing, world, state, epoch_seconds(until), seed)
            state.write(landing)
            line = (f"==> day {day}, {until:%Y-%m-%d %H:%M} UTC: {read:,} messages read, {caused:,} purchases they "
                    f"will cause; landed {organic:,} organic orders and {responses:,} caused ones")
            if day % every == 0 or day == days:
                os.environ["ATTIVA_AS_OF"] = until.isoformat()
                set_clock(sandbox_state, until)
                print(line + "; running the pipeline", flush=True)
                failed += _check(run_everything())
                until = after_the_run(until)
                state.clock = epoch_seconds(until)
                state.write(landing)
                _through_the_day(until, until + timedelta(days=every), sandbox_state)
                print(f"    day {day} took {time.monotonic() - started:.0f} s")
            else:
                print(line)
    checks = compare(landing)
    print(describe(checks))
    print(describe_variants(variant_checks(landing)))
    print(describe_send_times(send_time_checks(landing)))
    return Simulation(checks, failed)


def after_the_run(as_of: datetime) -> datetime:
    """The world's clock once a pipeline run as of `as_of` is over: its messages leave a few seconds after its
    as_of, and their attribution windows must have closed by the run `every` days later, so the world's days
    start at the next minute after the run's last message (unchanged when it sent none)."""
    path = settings.warehouse_path()
    if not path.exists():
        return as_of
    with warehouse.connect(read_only=True) as con:
        if not warehouse.has_table(con, "activation", "message_ledger"):
            return as_of
        last = con.execute("select max(sent_at) from activation.message_ledger where sent_at >= ?",
                           [as_of.astimezone(UTC).replace(tzinfo=None)]).fetchone()[0]
    if last is None:
        return as_of
    return max(as_of, (last.replace(tzinfo=UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0))


def _through_the_day(since: datetime, until: datetime, sandbox_state) -> None:
    """The best-hour messages planned by the run, each sent at its hour before the next run."""
    passes, sent = send_through_the_day(since, until, sandbox_state)
    if passes:
        print(f"    {sent:,} messages sent at their customers' best hours, in {passes} passes before the next run")
    os.environ["ATTIVA_AS_OF"] = since.isoformat()
    set_clock(sandbox_state, since)


def plant_world(seed: int) -> None:
    """Before a first pipeline run that the simulation then follows (`make demo`): the recipients' planted
    rates and habits, and the sandbox's clock at the run's."""
    landing = settings.landing_path()
    state = world_days.State.read(landing)
    clock = int((datetime.fromtimestamp(state.clock, UTC) if state else settings.as_of()).timestamp())
    sandbox_state = settings.data_dir() / "sandbox"
    plant_recipients(sandbox_state, load(landing, seed, state.origin if state else clock))
    set_clock(sandbox_state, datetime.fromtimestamp(clock, UTC))


def plant_recipients(sandbox_state, world) -> None:
    """What the sandbox's recipients do, planted (sandbox/engagement.py): the A/B test's true click rates, and
    each reader's hour for mail."""
    import json

    path = sandbox_state / "recipients.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "templates": {t: {"open": OPEN_RATE, "click_given_open": c} for t, c in VARIANT_CLICKS.items()},
        "habits": {"lift": HABIT_OPEN_LIFT, "readers": world.readers()}}) + "\n")


@dataclass(frozen=True)
class VariantCheck:
    """One A/B variant: its planted and measured click rate (of delivered), and how its share moved."""

    campaign: str
    step: int
    variant: str
    planted: float  # clicks per delivered message
    sent: int
    clicked: int
    delivered: int
    first_share: float  # of the step's messages on the first and last day it planned
    last_share: float


def variant_checks(landing=None) -> list[VariantCheck]:
    """The planted A/B steps as they ran: per variant, messages, clicks and the share of each planning day.
    A variant's planted click rate is its click rate of opened mail times the chance its messages had of being
    opened (the hour each reached its reader: the world's truth per message, when `landing` has it)."""
    truth = world_days.messages(landing) if landing is not None else None
    opens = ({t: float(p) for t, p in truth.drop_nulls("p_open").group_by("template").agg(pl.col("p_open").mean())
              .iter_rows() if t} if truth is not None else {})
    with warehouse.connect(read_only=True) as con:
        if not warehouse.has_table(con, "measurement", "message_outcomes"):
            return []
        rows = con.sql(f"""
            select l.campaign, l.step, l.template, cast(l.planned_at as date) as day, count(*) as planned,
                   sum(case when l.state = 'sent' then 1 else 0 end) as sent,
                   sum(case when o.delivered then 1 else 0 end) as delivered,
                   sum(case when o.clicked then 1 else 0 end) as clicked
            from activation.message_ledger as l
            left join measurement.message_outcomes as o on o.message_id = l.message_id
            where l.template in ({", ".join("?" for _ in VARIANT_CLICKS)}) and l.state <> 'held_out'
            group by 1, 2, 3, 4""", params=list(VARIANT_CLICKS)).pl()
    if rows.is_empty():
        return []
    totals = rows.group_by("campaign", "step", "day").agg(pl.col("planned").sum().alias("day_total"))
    first_last = totals.group_by("campaign", "step").agg(pl.col("day").min().alias("first"),
                                                        pl.col("day").max().alias("last"))
    checks = []
    for (campaign, step, variant), part in rows.group_by("campaign", "step", "template", maintain_order=True):
        bounds = first_last.filter((pl.col("campaign") == campaign) & (pl.col("step") == step)).row(0, named=True)

        def share(day, part=part, campaign=campaign, step=step) -> float:  # 0 on a day the variant got nothing
            total = totals.filter((pl.col("campaign") == campaign) & (pl.col("step") == step)
                                  & (pl.col("day") == day))["day_total"].sum()
            return float(part.filter(pl.col("day") == day)["planned"].sum() / total) if total else 0.0

        checks.append(VariantCheck(campaign, step, variant, opens.get(variant, OPEN_RATE) * VARIANT_CLICKS[variant],
                                   int(part["sent"].sum()),
                                   int(part["clicked"].sum()), int(part["delivered"].sum()),
                                   share(bounds["first"]), share(bounds["last"])))
    return checks


def describe_variants(checks: list[VariantCheck]) -> str:
    if not checks:
        return ""
    best = max(c.planted for c in checks)
    even = sum(c.planted for c in checks) / len(checks)
    sent = sum(c.sent for c in checks)
    regret = sum(c.sent * (best - c.planted) for c in checks)
    lines = ["==> the A/B test the world planted (clicks per delivered message)",
             f"  {'variant':<28} {'planted':>8} {'measured':>9} {'sent':>7} {'first day':>10} {'last day':>9}"]
    for c in checks:
        measured = f"{c.clicked / c.delivered:.2%}" if c.delivered else "-"
        lines.append(f"  {c.variant:<28} {c.planted:>8.2%} {measured:>9} {c.sent:>7,} {c.first_share:>10.0%} "
                     f"{c.last_share:>9.0%}")
    lines.append(f"  regret (expected clicks lost against sending the best variant to all): {regret:,.1f}; a fixed "
                 f"50/50 split of the same {sent:,} messages: {sent * (best - even):,.1f}")
    return "\n".join(lines)


def _has_run() -> bool:
    """Whether the pipeline has run on this warehouse (the demo's run counts as day 0)."""
    path = settings.warehouse_path()
    if not path.exists():
        return False
    with warehouse.connect(read_only=True) as con:
        return warehouse.has_table(con, "activation", "message_ledger")


def _check(result) -> list[str]:
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    if failed:
        print(f"    steps failed (their assets are stale, everything else ran): {', '.join(failed)}")
    return failed


def compare(landing) -> list[CampaignCheck]:
    """Measured uplift per campaign against the world's planted truth for the messages whose window closed."""
    truth = world_days.messages(landing)
    with warehouse.connect(read_only=True) as con:
        if not warehouse.has_table(con, "measurement", "campaign_uplift"):
            return []
        measured = con.execute("""
            select campaign, treated_customers, holdout_customers, treated_sent_customers, conversion_uplift,
                   conversion_uplift_ci_low, conversion_uplift_ci_high, too_small_to_say
            from measurement.campaign_uplift order by campaign""").fetchall()
    state = world_days.State.read(landing)
    closed = truth.filter(pl.col("received_at") + WINDOW_DAYS * world_days.DAY <= (state.clock if state else 0))
    checks = []
    for campaign, treated, holdout, sent, uplift, low, high, too_small in measured:
        received = closed.filter(pl.col("campaign") == campaign)
        if received.is_empty() or not treated:
            continue
        effect = expected_uplift(received["p_respond"].to_numpy(), received["p_organic"].to_numpy())
        checks.append(CampaignCheck(campaign, treated, holdout, float(received["p_respond"].mean()),
                                    effect * (sent or 0) / treated, uplift, low, high, bool(too_small)))
    return checks


def describe(checks: list[CampaignCheck]) -> str:
    if not checks:
        return "==> no campaign's attribution window has closed yet: simulate more days"
    lines = ["==> measured uplift (treated minus holdout conversion) against what the world planted",
             f"  {'campaign':<24} {'treated':>8} {'holdout':>8} {'planted':>8} {'expected':>9} {'measured':>9}"
             f"  {'95 % interval':<19} covered"]
    for c in checks:
        interval = f"{c.low:+.2%} to {c.high:+.2%}" if c.low is not None and c.high is not None else "-"
        covered = "too small" if c.covered is None else "yes" if c.covered else "NO"
        measured = f"{c.measured:+.2%}" if c.measured is not None else "-"
        lines.append(f"  {c.campaign:<24} {c.treated:>8,} {c.holdout:>8,} {c.planted_response:>8.2%} "
                     f"{c.expected:>+9.2%} {measured:>9}  {interval:<19} {covered}")
    lines.append("  planted: chance a received message caused a purchase; expected: the difference a holdout "
                 "comparison should find (purchases added on top of organic ones, times the share sent)")
    return "\n".join(lines)
