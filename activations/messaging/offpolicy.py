"""What another allocation would have earned, from the ledger's logs, before switching to it.

Each message of an A/B step carries the probability its variant had when it was planned
(`variant_probability`). Weighting each logged reward by target probability / logged probability
(inverse propensity) makes the logs speak for any target policy that only picks variants the
logged one could pick; self-normalized (dividing by the sum of the weights rather than the
count), it stays within [0, 1] and its variance is smaller, for a small bias that vanishes as
the logs grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from activations import warehouse
from activations.messaging import allocation


@dataclass(frozen=True)
class Estimate:
    rate: float | None  # the target policy's reward per message; None: the logs cannot tell
    standard_error: float | None
    messages: int  # logged messages the target could have sent as they were (weight > 0)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % interval (normal approximation)."""
        if self.rate is None or self.standard_error is None:
            return None
        return self.rate - 1.959964 * self.standard_error, self.rate + 1.959964 * self.standard_error


def estimate(logs: pl.DataFrame, target: dict[str, float]) -> Estimate:
    """The self-normalized IPS estimate of the reward rate of `target` (variant -> probability) from
    `logs` (variant, probability it was logged with, reward); rows without a logged probability are
    left out. Standard error by the delta method."""
    logs = logs.filter(pl.col("probability").is_not_null() & (pl.col("probability") > 0))
    weights = logs["variant"].replace_strict(target, default=0.0, return_dtype=pl.Float64) / logs["probability"]
    rewards = logs["reward"].cast(pl.Float64)
    total = float(weights.sum())
    if total <= 0:
        return Estimate(None, None, 0)
    rate = float((weights * rewards).sum()) / total
    error = math.sqrt(float((weights ** 2 * (rewards - rate) ** 2).sum())) / total
    return Estimate(rate, error, int((weights > 0).sum()))


@dataclass(frozen=True)
class VariantReport:
    """One variant of an A/B step, as `attiva messages variants` shows it."""

    step: int
    variant: str  # a template, or "(even split)"
    messages: int  # sent and settled (had time to earn the reward)
    observed: float | None  # its reward rate among its own messages
    allocated: float | None  # the probability its latest planned message had
    always: Estimate  # the IPS estimate of sending it to everyone


def compare(con, campaign: str, reward: str, now: datetime) -> list[VariantReport]:
    """Each A/B step of the campaign: every variant's observed rate, latest allocation and the IPS
    estimate of sending it to everyone; then the even split's estimate."""
    if not warehouse.has_table(con, "activation", "message_ledger"):
        return []
    allocated = allocation.allocated_now(con, campaign)
    found = []
    for step, templates in sorted(allocated.items()):
        logs = allocation.outcomes(con, campaign, step, reward, allocation.settled_before(reward, now))
        for template in sorted(templates):
            own = logs.filter(pl.col("variant") == template)
            found.append(VariantReport(step, template, own.height, own["reward"].mean() if own.height else None,
                                       templates[template], estimate(logs, {template: 1.0})))
        even = {t: 1 / len(templates) for t in templates}
        found.append(VariantReport(step, "(even split)", logs.height, None, None, estimate(logs, even)))
    return found
