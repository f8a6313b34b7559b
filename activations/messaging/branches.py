"""A journey's branches: a step skipped for what the customer did since the occurrence (its `unless`), or
sent as soon as they do it (its `when`).

`unless` is decided when the step falls due, so its delay is the time the customer has to do it: "email
after 4 h unless they clicked the push or bought" waits 4 h for a click or an order, then sends or skips.
`when` is looked at from the moment the step before it falls due, at every pass: "when they clicked, within
2 d" sends at the first pass that sees the click, and skips the step if 2 d after the occurrence there is
none. What counts, each in the warehouse as the pass sees it:

- opened / clicked: an earlier step's message of the same occurrence, as measurement.message_outcomes
  matches engagement to messages (the ESP's events by message id or address; the storefront's and app's
  message_displayed / message_clicked events by message id);
- bought: an order by the customer (marts.orders) placed after the occurrence and not cancelled;
- stopped: the customer's phone opted out of SMS (a STOP reply; activation.sms_suppression_list);
- in_audience:<aud_ model>: the customer is in that audience's model as it was last built.

A skipped step is recorded in the ledger as `skipped` with the reason, so the ledger holds the path each
customer took. While measurement.message_outcomes (or a named audience) is missing, a step that looks at
opens or clicks (or that audience) stays planned: deciding without them would send to someone who clicked.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import polars as pl

from activations.engine.dialect import has_table

OUTCOMES = ("measurement", "message_outcomes")


def decide(con, due: pl.DataFrame, triggers: dict, now: datetime, report) -> pl.DataFrame:
    """`due` with a `branch` column: why the row's step is skipped, else null; rows that cannot be decided yet
    (waiting for a view, or for what a `when` waits for) are left out: they stay planned."""
    steps = {(t.campaign, s.number): s for t in triggers.values() for s in t.steps if s.conditions}
    due = due.with_columns(pl.lit(None, pl.String).alias("branch"))
    if not steps or due.is_empty():
        return due
    keys = [(c, n) for c, n in zip(due["campaign"].to_list(), due["step"].to_list(), strict=True)]
    found = [steps.get(k) for k in keys]
    due = due.with_columns(
        pl.Series("unless", [list(s.unless) if s else [] for s in found], dtype=pl.List(pl.String)),
        pl.Series("when", [list(s.when) if s else [] for s in found], dtype=pl.List(pl.String)),
        pl.Series("timeout", [s.delay if s else None for s in found], dtype=pl.Duration("us")))
    # A `when` step gives up at its delay after the occurrence.
    due = due.with_columns((pl.col("occurred_at") + pl.col("timeout")).alias("deadline")).drop("timeout")
    looks = pl.col("unless").list.concat(pl.col("when"))
    audiences = dict(pair for s in steps.values() for pair in s.audiences)
    # What each condition needs built (relation -> its conditions), and which of those are not built yet.
    needs = {".".join(OUTCOMES): ["opened", "clicked"], **{r: [c] for c, r in audiences.items()}}
    missing = [c for relation, conditions in needs.items() if not has_table(con, *relation.split(".", 1))
               for c in conditions]
    for relation, conditions in needs.items():
        waits = looks.list.set_intersection(pl.lit(conditions)).list.len() > 0
        if set(conditions) <= set(missing):
            for campaign, n in due.filter(waits).group_by("campaign").len().iter_rows():
                report.add(campaign, f"waiting (its branch needs {relation})", n)
            due = due.filter(~waits)
    conditional = due.filter(looks.list.len() > 0)
    if conditional.is_empty():
        return due.drop("unless", "when", "deadline")
    did = _what_they_did(con, conditional, now, "opened" not in missing,
                         {c: r for c, r in audiences.items() if c not in missing})
    hit = pl.col("did").list.set_intersection(pl.col("unless"))
    waited = pl.col("did").list.set_intersection(pl.col("when"))
    timed_out = pl.col("deadline") <= now.replace(tzinfo=None)
    decided = did.with_columns(
        pl.when(hit.list.len() > 0).then(pl.concat_str([pl.lit("branch not taken: "), hit.list.join(", ")]))
        .when((pl.col("when").list.len() > 0) & (waited.list.len() == 0) & timed_out)
        .then(pl.concat_str([pl.lit("branch not taken: waited for "), pl.col("when").list.join(" or "),
                             pl.lit(" until it timed out")]))
        .alias("decided"),
        # A `when` not met yet, and not timed out: the row waits for a later pass.
        ((pl.col("when").list.len() > 0) & (waited.list.len() == 0) & ~timed_out).alias("waiting"))
    waiting = decided.filter(pl.col("waiting") & pl.col("decided").is_null())
    for campaign, n in waiting.group_by("campaign").len().iter_rows():
        report.add(campaign, "waiting for what its step waits for (when)", n)
    return (due.join(decided.select("campaign", "trigger_key", "step", "decided", "waiting"),
                     on=["campaign", "trigger_key", "step"], how="left")
            .filter(~(pl.col("waiting").fill_null(False) & pl.col("decided").is_null()))
            .with_columns(pl.col("decided").alias("branch")).drop("decided", "waiting", "unless", "when", "deadline"))


def _what_they_did(con, rows: pl.DataFrame, now: datetime, engagement: bool,
                   audiences: dict[str, str]) -> pl.DataFrame:
    """`rows` with `did`: the behaviours seen since its occurrence (opened an earlier step, clicked it, bought,
    stopped, and each `in_audience:` condition of `audiences` the customer is in)."""
    view = f"_attiva_branch_{uuid.uuid4().hex[:8]}"
    frame = rows.select("campaign", "trigger_key", "step", "customer_id", "occurred_at", "unless", "when", "deadline",
                        pl.col("sms_opt_out").is_not_null().alias("stopped"))
    con.register(view, frame.to_arrow())
    earlier = ("""exists (select 1 from activation.message_ledger as e
                          join measurement.message_outcomes as m on m.message_id = e.message_id
                          where e.campaign = r.campaign and e.trigger_key = r.trigger_key and e.step < r.step
                            and m.{what})""")
    members = "".join(f"case when exists (select 1 from {relation} as a where a.customer_id = r.customer_id) "
                      f"then '{condition}' end, " for condition, relation in sorted(audiences.items()))
    try:
        found = con.sql(f"""
            select r.*,
                   list_filter([
                       case when {earlier.format(what='opened') if engagement else 'false'} then 'opened' end,
                       case when {earlier.format(what='clicked') if engagement else 'false'} then 'clicked' end,
                       case when exists (select 1 from marts.orders as o where o.customer_id = r.customer_id
                                         and o.ordered_at > r.occurred_at and o.ordered_at <= ?
                                         and o.status is distinct from 'cancelled') then 'bought' end,
                       {members}
                       case when r.stopped then 'stopped' end], lambda x: x is not null) as did
            from {view} as r""", params=[now.replace(tzinfo=None)]).pl()
    finally:
        con.unregister(view)
    return found
