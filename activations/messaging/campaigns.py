"""The declared campaigns, each checked on its own: one broken campaign never stops the others.

A campaign is a `trg_*` model with its policy (policy.py), the channel it is sent by
(channels.yml) and its templates (rendered once with a sample, validate.py). A mistake in any
of them, or in messaging.yml (which every campaign reads), makes that campaign a BrokenTrigger
carrying the error the strict loaders would raise; the other campaigns stay sendable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from activations.messaging.channels import ChannelConfigError, load_usable_channels
from activations.messaging.policy import (
    BrokenTrigger,
    PolicyError,
    Trigger,
    campaign_name,
    load_settings,
    read_triggers,
    trigger_models,
)
from activations.messaging.templates import TemplateError, Templates
from activations.messaging.validate import validate_templates


@dataclass(frozen=True)
class Campaigns:
    """The campaigns that can be sent, and the broken ones with why."""

    triggers: list[Trigger]
    broken: list[BrokenTrigger] = field(default_factory=list)


def declared_campaigns(manifest: dict[str, Any], templates: Templates | None = None) -> Campaigns:
    """Every trg_* model's campaign, checked against messaging.yml, channels.yml and its templates."""
    try:
        defaults = load_settings()
        channels, channel_errors = load_usable_channels()
    except (PolicyError, ChannelConfigError) as exc:  # a file every campaign needs: none can be sent
        return Campaigns([], [BrokenTrigger(node["name"], campaign_name(node), exc) for node in trigger_models(manifest)])
    for channel in channels.values():
        channel.close()  # only their names and validity are needed here
    found, broken = read_triggers(manifest, set(channels) | set(channel_errors), defaults=defaults)
    templates = templates or Templates()
    usable: list[Trigger] = []
    for trigger in found:
        try:
            for channel in trigger.channels:  # its fallback's too: a campaign sends by both
                if channel in channel_errors:
                    raise channel_errors[channel]
            validate_templates([trigger], templates)
        except (ChannelConfigError, TemplateError) as exc:
            broken.append(BrokenTrigger(trigger.name, trigger.campaign, exc))
            continue
        usable.append(trigger)
    return Campaigns(usable, sorted(broken, key=lambda b: b.name))

