"""What became of triggered messages, read from the ledger: `attiva messages` and its `why`.

Per campaign: sent (and how many by its fallback channel), suppressed (by reason), held out, failed, unknown
(outcome unknown after an interrupted pass), and what is still waiting. Per person: every ledger row with its reason in
words, so "why did (or didn't) she get it?" has an answer without SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from activations import warehouse
from activations.engine.dialect import column_names

# The statuses shown, in this order; planned and queued are the ones not settled yet.
STATUSES = ("sent", "suppressed", "held_out", "skipped", "failed", "unknown", "planned", "queued")
LABELS = {"held_out": "held out", "planned": "waiting", "queued": "being sent"}


@dataclass
class CampaignStatus:
    campaign: str
    counts: dict[str, int] = field(default_factory=dict)  # status -> rows
    suppressed_by: dict[str, int] = field(default_factory=dict)  # reason (its kind) -> rows
    failed_by: dict[str, int] = field(default_factory=dict)
    skipped_by: dict[str, int] = field(default_factory=dict)  # a journey's branch not taken: what they did
    fallback_by: dict[str, int] = field(default_factory=dict)  # fallback channel -> messages sent by it

    def metadata(self) -> dict[str, int]:
        """Flat counts for Dagster: messages_<status> and suppressed_<reason>."""
        meta = {f"messages_{s}": self.counts.get(s, 0) for s in STATUSES}
        meta.update({f"suppressed_{_slug(reason)}": n for reason, n in sorted(self.suppressed_by.items())})
        return meta


def reason_kind(reason: str | None) -> str:
    """A reason without its particulars: "frequency cap (1/day, 3/week): ..." -> "frequency cap",
    "exited: ordered" -> "exited"."""
    if not reason:
        return "no reason recorded"
    reason = reason.split(", by the fallback ", 1)[0]  # decided for the campaign's fallback channel: same kind
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip() or reason


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def campaigns(con, campaign: str | None = None) -> list[CampaignStatus]:
    """Every campaign in the ledger (or one) with its counts by status and by suppression reason."""
    if not warehouse.has_table(con, "activation", "message_ledger"):
        return []
    where, params = ("where campaign = ?", [campaign]) if campaign else ("", [])
    found: dict[str, CampaignStatus] = {}
    for name, state, reason, n in con.execute(f"""
            select campaign, state, case when state in ('suppressed', 'failed', 'skipped') then reason
                                         when state = 'sent' and reason like 'by the fallback %' then channel end,
                   count(*)
            from activation.message_ledger {where} group by all order by 1""", params).fetchall():
        status = found.setdefault(name, CampaignStatus(name))
        state = "unknown" if state == "sending" else state  # left by an older version's killed pass
        status.counts[state] = status.counts.get(state, 0) + n
        if state == "sent" and reason:  # the channel of a message sent by the campaign's fallback
            status.fallback_by[reason] = status.fallback_by.get(reason, 0) + n
        if state == "skipped":  # "branch not taken: clicked, bought": what they did is the kind
            status.skipped_by[reason or ""] = status.skipped_by.get(reason or "", 0) + n
        if state in ("suppressed", "failed"):
            by = status.suppressed_by if state == "suppressed" else status.failed_by
            kind = reason_kind(reason)
            by[kind] = by.get(kind, 0) + n
    return list(found.values())


def step_counts(con, campaign: str) -> dict[tuple[int, str], dict[str, int]]:
    """(step, template) -> ledger rows by status, of one campaign (its A/B variants apart)."""
    if not warehouse.has_table(con, "activation", "message_ledger"):
        return {}
    found: dict[tuple[int, str], dict[str, int]] = {}
    for step, template, state, n in con.execute(
            "select step, template, state, count(*) from activation.message_ledger where campaign = ? group by all",
            [campaign]).fetchall():
        state = "unknown" if state == "sending" else state
        counts = found.setdefault((step, template), {})
        counts[state] = counts.get(state, 0) + n
    return found


def campaigns_table(statuses: list[CampaignStatus]) -> str:
    """The `attiva messages` table, then the suppression and failure reasons per campaign."""
    if not statuses:
        return "no triggered messages yet (the ledger is empty)"
    heads = ["campaign", *(LABELS.get(s, s) for s in STATUSES)]
    rows = [[s.campaign, *(str(s.counts.get(state, 0)) for state in STATUSES)] for s in statuses]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [heads, *rows]]
    reasons = [""]
    for s in statuses:
        for label, by in (("sent by the fallback", s.fallback_by), ("suppressed", s.suppressed_by),
                          ("skipped", s.skipped_by), ("failed", s.failed_by)):
            if by:
                reasons.append(f"  {s.campaign} {label}: " + ", ".join(
                    f"{n} {kind}" for kind, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))))
    lines += reasons if len(reasons) > 1 else []
    unknown = sum(s.counts.get("unknown", 0) for s in statuses)
    if unknown:
        lines.append(f"{unknown} message(s) with an unknown outcome: a pass ended while they were in flight "
                     "(see docs/messaging-guarantees.md)")
    return "\n".join(lines)


def why(con, who: str, campaign: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """The customer ids `who` names (a customer id, or an email in marts.customers) and every ledger row
    of theirs (of `campaign`, if given), oldest occurrence first, each with its explanation."""
    ids = [who]
    if "@" in who and warehouse.has_table(con, "marts", "customers"):
        ids = [r[0] for r in con.execute("select customer_id from marts.customers "
                                         "where lower(trim(email)) = lower(trim(?))", [who]).fetchall()] or [who]
    if not warehouse.has_table(con, "activation", "message_ledger"):
        return ids, []
    marks = ", ".join("?" for _ in ids)
    where = f"customer_id in ({marks})" + (" and campaign = ?" if campaign else "")
    columns = ("campaign", "trigger_key", "step", "template", "channel", "state", "reason", "occurred_at", "due_at",
               "sent_at", "provider_id", "attempts")
    # A ledger older than send-time optimization has no timed_by, and a read-only reader cannot add it.
    columns += tuple(c for c in ("timed_by",) if c in column_names(con, "activation", "message_ledger"))
    rows = con.execute(f"select {', '.join(columns)} from activation.message_ledger where {where} "
                       "order by occurred_at, campaign, step", [*ids, *([campaign] if campaign else [])]).fetchall()
    found = []
    for row in rows:
        entry = dict(zip(columns, row, strict=True))
        entry["explanation"] = explain(entry)
        found.append(entry)
    return ids, found


def explain(row: dict[str, Any]) -> str:
    """One ledger row's state and reason as a sentence."""
    state, reason = row["state"], row.get("reason")
    if state == "sent":
        said = f"sent {_at(row.get('sent_at'))}, accepted by {row.get('channel')}"
        said += f" (id {row['provider_id']})" if row.get("provider_id") else ""
        return said + (f"; {reason}" if reason else "")
    if state == "planned":
        return (f"waiting: due {_at(row.get('due_at'))}{TIMED_BY.get(row.get('timed_by'), '')}"
                + (f"; {reason}" if reason else ""))
    if state == "queued":
        return "being sent by a pass now (if that pass was killed, the next one settles it)"
    if state == "held_out":
        return f"held out: {reason or 'in the campaign holdout'} (never sent, to measure the uplift)"
    if state == "skipped":  # a journey's step the customer's behaviour made unneeded
        return f"skipped, not sent by {row.get('channel')}: {reason or 'a branch not taken'}"
    if state in ("unknown", "sending"):
        return reason or "outcome unknown: a pass ended while it was in flight"
    return f"{state.replace('_', ' ')}: {reason or 'no reason recorded'}"


# How a due time was chosen (ledger.timed_by, send_time.py), where it was not simply occurrence + delay.
TIMED_BY = {"best_hour": ", the customer's best hour", "segment_hour": ", their segment's best hour"}


def _at(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if isinstance(value, datetime) else "(no time recorded)"


def why_text(who: str, ids: list[str], rows: list[dict[str, Any]], campaign: str | None) -> str:
    """The `attiva messages why` listing."""
    person = who if ids == [who] else f"{who} ({', '.join(ids)})"
    if not rows:
        return f"no triggered message for {person}" + (f" in campaign {campaign}" if campaign else "")
    lines = [f"{len(rows)} ledger row(s) for {person}:"]
    for r in rows:
        lines.append(f"  {r['campaign']} step {r['step']} ({r['template']}, occurrence {r['trigger_key']}, "
                     f"{_at(r['occurred_at'])}): {r['explanation']}")
    return "\n".join(lines)
