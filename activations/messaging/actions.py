"""What people did to a campaign by hand, and the pause the send path honours.

`activation.campaign_actions` (created with the ledger, ledger.TABLES) keeps one row per action,
never updated: `pause` and `resume` (from `attiva campaigns` or the console), and `test_send` (a
step's message sent to an address someone typed, from the console; never a ledger row). Who did
it (`actor`), when (`acted_at`, UTC) and, for a test send, the step, template, customer rendered, the
address, its own Message-ID and what the channel answered (`sending` until it answers).

A campaign is paused while its latest pause or resume is a pause. A messaging pass reads that once,
at its start (it holds the warehouse for the whole pass, so nobody can pause in the middle of it):
a paused campaign's occurrences are still planned, but none of its due messages is sent; they stay
`planned` and go out at the first pass after the resume, unless they expired meanwhile (then
suppressed with that reason, as any message that could not be sent in time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from activations import warehouse
from activations.messaging.ledger import ensure_ledger

TABLE = "campaign_actions"
ACTIONS = ("pause", "resume", "test_send")


@dataclass(frozen=True)
class Pause:
    campaign: str
    actor: str
    at: datetime  # naive UTC, as stored

    def sentence(self) -> str:
        return f"paused by {self.actor} at {self.at:%Y-%m-%d %H:%M} UTC"


def paused(con) -> dict[str, Pause]:
    """The campaigns paused now, by name (read-only is enough: no table, nothing paused)."""
    if not warehouse.has_table(con, "activation", TABLE):
        return {}
    rows = con.execute(f"""
        select campaign, action, actor, acted_at from (
            select campaign, action, actor, acted_at,
                   row_number() over (partition by campaign order by acted_at desc, action) as recency
            from activation.{TABLE} where action in ('pause', 'resume')) as latest
        where recency = 1 and action = 'pause'""").fetchall()
    return {campaign: Pause(campaign, actor, at) for campaign, _, actor, at in rows}


def set_paused(con, campaign: str, pause: bool, actor: str, now: datetime | None = None) -> bool:
    """Pause (or resume) `campaign`, recorded with who and when; False, and nothing recorded, when it
    already was. `con` writes; the table is created if missing."""
    ensure_ledger(con)
    if (campaign in paused(con)) == pause:
        return False
    _record(con, campaign, "pause" if pause else "resume", actor, now)
    return True


def record_test_send(con, campaign: str, actor: str, *, step: int, template: str, customer_id: str | None,
                     sent_to: str, message_id: str, now: datetime | None = None) -> None:
    """A test send from the console, recorded before it leaves (outcome `sending`): nothing is sent unrecorded."""
    ensure_ledger(con)
    _record(con, campaign, "test_send", actor, now, step=step, template=template, customer_id=customer_id,
            sent_to=sent_to, message_id=message_id, outcome="sending")


def settle_test_send(con, message_id: str, outcome: str) -> None:
    """What the channel answered to a recorded test send."""
    con.execute(f"update activation.{TABLE} set outcome = ? where action = 'test_send' and message_id = ?",
                [outcome, message_id])


def history(con, campaign: str, limit: int = 50) -> list[dict]:
    """The campaign's actions, newest first."""
    if not warehouse.has_table(con, "activation", TABLE):
        return []
    cursor = con.execute(f"select action, actor, acted_at, step, template, customer_id, sent_to, message_id, outcome "
                         f"from activation.{TABLE} where campaign = ? order by acted_at desc limit ?", [campaign, limit])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _record(con, campaign: str, action: str, actor: str, now: datetime | None, **detail) -> None:
    at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    columns = ("step", "template", "customer_id", "sent_to", "message_id", "outcome")
    con.execute(f"insert into activation.{TABLE} (campaign, action, actor, acted_at, {', '.join(columns)}) "
                f"values (?, ?, ?, ?{', ?' * len(columns)})", [campaign, action, actor, at, *map(detail.get, columns)])
