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

import dagster as dg

from activations.messaging import ledger, status
from activations.messaging.channels import load_channel_entries, load_channels
from activations.messaging.policy import Trigger, load_settings, triggers
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from activations.messaging.validate import validate_templates
from orchestration.defs.dbt import MANIFEST
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.clock import run_as_of

MESSAGES_GROUP = "messages"


def declared_triggers() -> list[Trigger]:
    """Every trg_* model with its policy; templates validated now, not at send time."""
    channels = load_channels()
    found = triggers(MANIFEST, set(channels), defaults=load_settings())
    validate_templates(found, Templates())
    return found


def message_key(trigger: Trigger) -> dg.AssetKey:
    return dg.AssetKey(["messages", trigger.campaign])


# The Dagster kind shown for a campaign, by its channel's type in channels.yml.
KIND_OF_CHANNEL_TYPE = {"smtp": "email", "sendgrid_mail": "sendgrid", "webhook": "webhook",
                        "salesforce_task": "salesforce"}


def _kind(trigger: Trigger, channel_types: dict[str, str]) -> str:
    return KIND_OF_CHANNEL_TYPE.get(channel_types.get(trigger.channel, ""), trigger.channel)


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
        """Plan new occurrences and send what is due, for the selected campaigns together."""
        selected = [t for t in found if message_key(t) in context.selected_asset_keys]
        channels = load_channels()
        try:
            with warehouse.connect() as con:
                report = run_pass(con, selected, channels, Templates(), load_settings(), now=run_as_of(context))
                counts = ledger.counts(con)
                statuses = {s.campaign: s for s in status.campaigns(con)}
        finally:
            for channel in channels.values():
                channel.close()
        context.log.info(f"messaging pass:\n{report}")
        for trigger in selected:
            yield dg.MaterializeResult(asset_key=message_key(trigger), metadata=_metadata(
                counts.get(trigger.campaign, {}), report.outcomes.get(trigger.campaign, {}),
                statuses.get(trigger.campaign)))

    return [send_messages]


def message_definitions() -> tuple[list[dg.AssetsDefinition], tuple]:
    """The message assets, plus the job and schedule that send due steps between data runs."""
    assets = message_assets(declared_triggers())
    job = dg.define_asset_job("due_messages", selection=dg.AssetSelection.groups(MESSAGES_GROUP),
                              description="Send the steps whose delay has passed (no new data needed).",
                              tags={"attiva/trigger": "due_messages"})
    schedule = dg.ScheduleDefinition(name="due_messages_every_5_minutes", job=job, cron_schedule="*/5 * * * *",
                                      default_status=dg.DefaultScheduleStatus.RUNNING)
    return assets, (job, schedule)
