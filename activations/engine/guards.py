"""Guards: a sync that removes refuses to empty a destination because an audience broke.

A mirror (or full resync) run stops before sending anything when it would remove
more than `max_remove_share` of what the destination holds, or when the audience
shrank by more than `max_shrink_share` since the last run that sent; `--force` overrides.
"""

from __future__ import annotations

from activations.engine.plan import SEND_OPERATIONS, Plan
from activations.engine.state import DELIVERED
from activations.manifest import Sync


class GuardRefusal(str):
    """Why a guard refused, in words a marketer can act on."""


def check_guards(con, sync: Sync, plan: Plan) -> GuardRefusal | None:
    """The reason to refuse this plan, or None when it may go ahead."""
    if not SEND_OPERATIONS[sync.mode][2] or plan.snapshot_rows == 0:
        return None  # nothing this mode does can empty the destination
    remove_share = plan.removes / plan.snapshot_rows
    if remove_share > sync.guards["max_remove_share"]:
        return GuardRefusal(
            f"{sync.name}: refusing to remove {plan.removes:,} of the {plan.snapshot_rows:,} rows the destination "
            f"holds ({remove_share:.0%} > max_remove_share {sync.guards['max_remove_share']:.0%}). Check "
            f"{sync.audience.name}; if the removals are right, run again with --force.")
    # fetchall, not fetchone: a result left unfinished on `con` blocks the next streamed read on it.
    last = con.execute(f"""
        select audience_rows from activation.sync_runs
        where sync_name = ? and status in ({", ".join("?" for _ in DELIVERED)}) and audience_rows is not null
        order by started_at desc limit 1""", [sync.name, *DELIVERED]).fetchall()
    previous = last[0][0] if last else None
    if previous:
        shrink = 1 - plan.audience_rows / previous
        if shrink > sync.guards["max_shrink_share"]:
            return GuardRefusal(
                f"{sync.name}: {sync.audience.name} shrank from {previous:,} to {plan.audience_rows:,} rows "
                f"({shrink:.0%} > max_shrink_share {sync.guards['max_shrink_share']:.0%}) since the last run. "
                f"If that is right, run again with --force.")
    return None
