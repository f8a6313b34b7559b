"""Triggered messages: one asset per campaign (`messages/<campaign>`), all sent by one step.

One step for every campaign, because the frequency caps are shared: when a cart reminder and a
browse reminder fall due for one person at once, the higher priority must win, which needs
both in the same pass. Each campaign's asset depends on its `trg_*` model, so its quality
checks and dbt tests stand in front of it; its metadata carries the ledger's counts.

When it runs:
- after new landing files (the landing sensor's run includes everything downstream);
- event-driven campaigns (cart and browse abandonment: their triggers read `events`) also within
  seconds of new event files, by the event path (fresh_events.py), outside these assets;
- `due_messages` every 5 minutes: steps whose delay has passed (a cart reminder 2 h after
  the cart) go out without waiting for new data;
- the daily schedule (birthdays on the day; the full refresh rebuilds the triggers).
"""

import functools
from pathlib import Path

import dagster as dg

from activations import settings
from activations.messaging import ledger, status
from activations.messaging.campaigns import Campaigns, declared_campaigns
from activations.messaging.channels import (
    dagster_kind,
    load_channel_entries,
    load_usable_channels,
)
from activations.messaging.policy import BrokenTrigger, Trigger, load_settings
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from activations.warehouse import has_table
from orchestration.defs.dbt import MANIFEST
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.broken import broken_asset
from orchestration.lib.clock import run_as_of

MESSAGES_GROUP = "messages"


def campaigns() -> Campaigns:
    """The declared campaigns, sendable and broken (policy, channel and templates checked now, not at
    send time). Checked once per set of files: the definitions' modules all ask (1 s of rendering)."""
    return _campaigns(settings.templates_dir(), settings.channels_path(), settings.messaging_path())


@functools.cache
def _campaigns(templates: Path, channels: Path, messaging: Path) -> Campaigns:
    # The paths are only the cache key: pointed at other files (a test, a deployment), it checks again.
    return declared_campaigns(MANIFEST)


def declared_triggers() -> list[Trigger]:
    """Every trg_* model whose campaign can be sent; the broken ones get assets of their own that fail
    (message_definitions)."""
    return campaigns().triggers


def message_key(trigger: Trigger) -> dg.AssetKey:
    return dg.AssetKey(["messages", trigger.campaign])


def _kind(trigger: Trigger, channel_types: dict[str, str]) -> str:
    """The kind its channel's class declares (channels.py), else the channel's name."""
    return dagster_kind(channel_types.get(trigger.channel, "")) or trigger.channel


def _metadata(counts: dict[str, int], outcomes: dict[str, int], campaign: status.CampaignStatus | None = None) -> dict:
    meta = {f"ledger_{state}": n for state, n in sorted(counts.items())}
    meta.update({f"this_run_{k.split(' ')[0]}": n for k, n in sorted(outcomes.items())})
    # As `attiva messages` shows them: sent, suppressed (and by reason), held out, failed, unknown.
    meta.update((campaign or status.CampaignStatus("")).metadata())
    return meta


def message_assets(found: list[Trigger]) -> list[dg.AssetsDefinition]:
    if not found:
        return []
    channel_types = {name: str(entry.get("type")) for name, entry in load_channel_entries().items()}
    specs = [dg.AssetSpec(message_key(t), deps=[dg.AssetKey(["triggers", t.name])], group_name=MESSAGES_GROUP,
                          kinds={_kind(t, channel_types)},
                          description=f"{t.campaign}: {len(t.steps)} step(s) by {t.channel}, priority {t.priority}, "
                                      f"holdout {t.holdout:.0%}; consent: {t.consent or 'none'}.",
                          automation_condition=dg.AutomationCondition.eager()
                          & dg.AutomationCondition.all_deps_blocking_checks_passed())
             for t in found]

    @dg.multi_asset(specs=specs, name="send_messages", pool=WAREHOUSE_POOL, can_subset=True)
    def send_messages(context: dg.AssetExecutionContext, warehouse: Warehouse):
        """Plan new occurrences and send what is due, for the selected campaigns together; a campaign that
        cannot be sent now (its model not built yet, its channel misconfigured or stopped during the pass)
        fails alone, after the others."""
        selected = [t for t in found if message_key(t) in context.selected_asset_keys]
        channels, channel_errors = load_usable_channels()
        try:
            with warehouse.connect() as con:
                unable = {t.campaign: reason for t in selected
                          if (reason := _cannot_send(con, t, channels, channel_errors))}
                selected = [t for t in selected if t.campaign not in unable]
                report = run_pass(con, selected, channels, Templates(), load_settings(), now=run_as_of(context))
                counts = ledger.counts(con)
                statuses = {s.campaign: s for s in status.campaigns(con)}
        finally:
            for channel in channels.values():
                channel.close()
        context.log.info(f"messaging pass:\n{report}")
        unable.update(report.stopped_campaigns(selected))  # refused credentials, a wrong URL, no connection
        for trigger in selected:
            if trigger.campaign in unable:
                continue
            yield dg.MaterializeResult(asset_key=message_key(trigger), metadata=_metadata(
                counts.get(trigger.campaign, {}), report.outcomes.get(trigger.campaign, {}),
                statuses.get(trigger.campaign)))
        if unable:
            raise dg.Failure(description="; ".join(f"{campaign} not sent: {reason}"
                                                   for campaign, reason in sorted(unable.items())),
                             allow_retries=False)

    return [send_messages]


def channel_problem(trigger: Trigger, channels: dict, channel_errors: dict) -> str | None:
    """Why `trigger`'s channel (or its fallback's) cannot send now (channels.yml changed since loading), or None."""
    for channel in trigger.channels:
        if channel in channel_errors:
            return str(channel_errors[channel])
        if channel not in channels:
            return f"channel {channel!r} is no longer in channels.yml"
    return None


def _cannot_send(con, trigger: Trigger, channels: dict, channel_errors: dict) -> str | None:
    """Why `trigger`'s campaign cannot be sent in this pass, or None."""
    if problem := channel_problem(trigger, channels, channel_errors):
        return problem
    schema, _, table = trigger.relation.partition(".")
    if not has_table(con, schema, table):
        return f"{trigger.relation} is not in the warehouse yet: build {trigger.name} (attiva build, or a landing run)"
    return None


def _broken_assets(broken: list[BrokenTrigger]) -> list[dg.AssetsDefinition]:
    return [broken_asset(dg.AssetKey(["messages", b.campaign]), error=b.reason, group_name=MESSAGES_GROUP,
                         deps=[dg.AssetKey(["triggers", b.name])]) for b in broken]


def definitions() -> dg.Definitions:
    """The message assets (a broken campaign's fails with its error), plus the job and schedule that send due
    steps between data runs. The job leaves broken campaigns out: every 5 minutes it would only repeat
    their alert; the data runs (landing, daily) include them and fail on them."""
    found = campaigns()
    broken = _broken_assets(found.broken)
    assets = message_assets(found.triggers) + broken
    selection = dg.AssetSelection.groups(MESSAGES_GROUP) - dg.AssetSelection.assets(*broken)
    job = dg.define_asset_job("due_messages", selection=selection,
                              description="Send the steps whose delay has passed (no new data needed).",
                              tags={"attiva/trigger": "due_messages"})
    schedule = dg.ScheduleDefinition(name="due_messages_every_5_minutes", job=job, cron_schedule="*/5 * * * *",
                                      default_status=dg.DefaultScheduleStatus.RUNNING)
    return dg.Definitions(assets=assets, jobs=[job], schedules=[schedule])
