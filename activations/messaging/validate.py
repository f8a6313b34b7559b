"""Every template a trigger names, rendered once with a context shaped like the real one, so
an unknown variable fails when definitions load, not when a customer's message is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from activations.messaging.policy import Trigger
from activations.messaging.templates import Templates, sample_context


class AnyValue:
    """A nested payload (`<x>_json`) whose shape only the data knows: any attribute, one item."""

    def __getattr__(self, name: str) -> AnyValue:
        return self

    def __getitem__(self, key: Any) -> AnyValue:
        return self

    def __iter__(self) -> Iterator[AnyValue]:
        return iter([self])

    def __len__(self) -> int:
        return 1

    def __str__(self) -> str:
        return "sample"

    def __format__(self, spec: str) -> str:
        return "1" if spec else "sample"

    def __float__(self) -> float:
        return 1.0

    def __int__(self) -> int:
        return 1


def payload_name(column: str) -> str:
    """A payload column as templates see it: `cart_products_json` arrives parsed, as `cart_products`."""
    return column.removesuffix("_json") if column.endswith("_json") else column


def trigger_sample(trigger: Trigger, step: int, channel: str | None = None) -> dict[str, Any]:
    """templates.sample_context, with only the payload this trigger's model provides: a template
    reading a field its trigger lacks fails here. `channel`: the one it is sent by (the fallback's)."""
    context = sample_context(campaign=trigger.campaign, step=step, channel=channel or trigger.channel,
                             coupon=trigger.steps[step - 1].coupon is not None)
    known = context["trigger"]
    context["trigger"] = {
        name: known.get(name, AnyValue() if column.endswith("_json") else "sample")
        for column in trigger.payload_columns for name in [payload_name(column)]}
    return context


def validate_templates(triggers: list[Trigger], templates: Templates) -> None:
    """Raise TemplateError (naming template, file, line, variable) for the first template that cannot render."""
    for trigger in triggers:
        for step in trigger.steps:
            for template in step.templates:  # every variant of an A/B test, by the step's channel
                templates.validate(template, trigger_sample(trigger, step.number, trigger.step_channel(step)))
            if step.fallback_template and trigger.fallback:  # sent by the fallback channel
                templates.validate(step.fallback_template,
                                   trigger_sample(trigger, step.number, trigger.fallback.channel))
