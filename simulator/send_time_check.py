"""Send-time optimization measured against what the world planted.

A campaign declaring `send_time: best_hour` with `send_time_control: <share>` sends a random share of its
customers as soon as due (the ledger's `timed_by` control); the rest go at their best hour where one is
known. Measured: the open rate of each group's delivered mail (measurement.message_outcomes, from the
sandbox's engagement feed) and the difference with its 95 % interval. Planted: the chance each of
those messages had of being opened, given the hour it reached its reader (simulator/world.py), averaged
the same way; the interval should hold the planted difference about 95 % of the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from activations import warehouse
from activations.engine.dialect import column_names
from activations.messaging.send_time import CONTROL
from activations.report.intervals import rate_difference
from simulator import days as world_days


@dataclass(frozen=True)
class SendTimeCheck:
    campaign: str
    control_delivered: int
    control_opened: int
    timed_delivered: int  # the rest of the campaign: at the best hour where one was found
    timed_opened: int
    at_hour_share: float  # of the timed group's mail: reached the reader in their preferred hour
    planted: float  # the difference in open rate the world's probabilities give for these messages
    measured: float
    low: float
    high: float

    @property
    def covered(self) -> bool:
        return self.low <= self.planted <= self.high


def send_time_checks(landing: Path) -> list[SendTimeCheck]:
    truth = world_days.messages(landing).filter(pl.col("p_open").is_not_null()).select("message_id", "p_open",
                                                                                        "in_hour")
    with warehouse.connect(read_only=True) as con:
        if not (warehouse.has_table(con, "measurement", "message_outcomes")
                and "timed_by" in column_names(con, "activation", "message_ledger")):
            return []
        sent = con.sql("""
            select l.campaign, l.message_id, l.timed_by = ? as control, o.opened
            from activation.message_ledger as l
            inner join measurement.message_outcomes as o on o.message_id = l.message_id
            where l.state = 'sent' and o.delivered
              and l.campaign in (select campaign from activation.message_ledger where timed_by = ?)""",
                       params=[CONTROL, CONTROL]).pl()
    rows = sent.join(truth, on="message_id", how="inner")
    checks = []
    for (campaign,), part in rows.group_by("campaign", maintain_order=True):
        control, timed = part.filter(pl.col("control")), part.filter(~pl.col("control"))
        if control.is_empty() or timed.is_empty():
            continue
        measured, low, high = rate_difference(int(timed["opened"].sum()), timed.height,
                                              int(control["opened"].sum()), control.height)
        checks.append(SendTimeCheck(campaign, control.height, int(control["opened"].sum()), timed.height,
                                    int(timed["opened"].sum()), float(timed["in_hour"].mean()),
                                    float(timed["p_open"].mean() - control["p_open"].mean()), measured, low, high))
    return sorted(checks, key=lambda c: c.campaign)


def describe_send_times(checks: list[SendTimeCheck]) -> str:
    if not checks:
        return "==> send-time optimization: no campaign with a send_time_control group has delivered mail yet"
    lines = ["==> send-time optimization against the readers' planted hours (open rate of delivered mail)",
             f"  {'campaign':<24} {'control':>14} {'best hour':>14} {'in hour':>8} {'planted':>8} {'measured':>9}"
             f"  {'95 % interval':<19} covered"]
    for c in checks:
        lines.append(f"  {c.campaign:<24} {c.control_opened / c.control_delivered:>7.1%} of {c.control_delivered:<4,}"
                     f" {c.timed_opened / c.timed_delivered:>7.1%} of {c.timed_delivered:<4,} {c.at_hour_share:>8.0%}"
                     f" {c.planted:>+8.2%} {c.measured:>+9.2%}  {c.low:+.2%} to {c.high:+.2%}"
                     f"  {'yes' if c.covered else 'NO'}")
    lines.append("  in hour: the best-hour group's mail that reached its reader in the hour they read mail; planted: the "
                 "difference the world's open probabilities give for the same messages")
    return "\n".join(lines)
