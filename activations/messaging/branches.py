"""A journey's branches: a step skipped for what the customer did since the occurrence (its `unless`).

Decided when the step falls due, so its delay is the time the customer has to do it: "email after 4 h
unless they clicked the push or bought" waits 4 h for a click or an order, then sends or skips. What
counts, each in the warehouse as the pass sees it:

- opened / clicked: an earlier step's message of the same occurrence, as measurement.message_outcomes
  matches engagement to messages (the ESP's events by message id or address; the storefront's and app's
  message_displayed / message_clicked events by message id);
- bought: an order by the customer (marts.orders) placed after the occurrence and not cancelled;
- stopped: the customer's phone opted out of SMS (a STOP reply; activation.sms_suppression_list).

A skipped step is recorded in the ledger as `skipped` with the reason, so the ledger holds the path each
customer took. While measurement.message_outcomes is missing (a warehouse not yet built), a step that
waits on opens or clicks stays planned: deciding without them would send to someone who clicked.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import polars as pl

from activations.engine.dialect import has_table

OUTCOMES = ("measurement", "message_outcomes")


def decide(con, due: pl.DataFrame, triggers: dict, now: datetime, report) -> pl.DataFrame:
    """`due` with a `branch` column: why the row's step is skipped, else null; rows that cannot be decided yet
    are left out (they stay planned, and `report` says so)."""
    unless = {(t.campaign, s.number): s.unless for t in triggers.values() for s in t.steps if s.unless}
    due = due.with_columns(pl.lit(None, pl.String).alias("branch"))
    if not unless or due.is_empty():
        return due
    keys = [(c, s) for c, s in zip(due["campaign"].to_list(), due["step"].to_list(), strict=True)]
    asks = pl.Series("unless", [list(unless.get(k, ())) for k in keys], dtype=pl.List(pl.String))
    due = due.with_columns(asks)
    conditional = due.filter(pl.col("unless").list.len() > 0)
    if conditional.is_empty():
        return due.drop("unless")
    engagement = has_table(con, *OUTCOMES)
    if not engagement:
        waits = pl.col("unless").list.set_intersection(pl.lit(["opened", "clicked"])).list.len() > 0
        for campaign, n in due.filter(waits).group_by("campaign").len().iter_rows():
            report.add(campaign, f"waiting (its branch needs {'.'.join(OUTCOMES)})", n)
        due, conditional = due.filter(~waits), conditional.filter(~waits)
    did = _what_they_did(con, conditional, now, engagement)
    why = pl.concat_str([pl.lit("branch not taken: "), pl.col("did").list.join(", ")])
    decided = (did.with_columns(pl.col("did").list.set_intersection(pl.col("unless")).alias("did"))
               .with_columns(pl.when(pl.col("did").list.len() > 0).then(why).alias("decided"))
               .select("campaign", "trigger_key", "step", "decided"))
    return (due.join(decided, on=["campaign", "trigger_key", "step"], how="left")
            .with_columns(pl.col("decided").alias("branch")).drop("decided", "unless"))


def _what_they_did(con, rows: pl.DataFrame, now: datetime, engagement: bool) -> pl.DataFrame:
    """Per row, the list of behaviours seen since its occurrence (opened an earlier step, clicked it, bought,
    stopped)."""
    view = f"_attiva_branch_{uuid.uuid4().hex[:8]}"
    frame = rows.select("campaign", "trigger_key", "step", "customer_id", "occurred_at", "unless",
                        pl.col("sms_opt_out").is_not_null().alias("stopped"))
    con.register(view, frame.to_arrow())
    earlier = ("""exists (select 1 from activation.message_ledger as e
                          join measurement.message_outcomes as m on m.message_id = e.message_id
                          where e.campaign = r.campaign and e.trigger_key = r.trigger_key and e.step < r.step
                            and m.{what})""")
    try:
        found = con.sql(f"""
            select r.campaign, r.trigger_key, r.step, r.unless,
                   list_filter([
                       case when {earlier.format(what='opened') if engagement else 'false'} then 'opened' end,
                       case when {earlier.format(what='clicked') if engagement else 'false'} then 'clicked' end,
                       case when exists (select 1 from marts.orders as o where o.customer_id = r.customer_id
                                         and o.ordered_at > r.occurred_at and o.ordered_at <= ?
                                         and o.status is distinct from 'cancelled') then 'bought' end,
                       case when r.stopped then 'stopped' end], lambda x: x is not null) as did
            from {view} as r""", params=[now.replace(tzinfo=None)]).pl()
    finally:
        con.unregister(view)
    return found
