"""Messages held for a customer's best hour go out at that hour of the simulated day.

The simulator runs the whole pipeline once per simulated day, which plans each `send_time: best_hour`
step for the customer's hour, up to a day ahead. In production the `due_messages` schedule sends them
(every 5 minutes); here, after each run, one messaging pass of those campaigns runs at each moment a
message falls due before the next run, with the as_of clock (and the sandbox's, sandbox/engagement.py)
moved there, so the mail's Date header says the hour it went out, which the simulated readers answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from activations import warehouse
from activations.manifest import load_manifest
from activations.messaging.campaigns import declared_campaigns
from activations.messaging.channels import load_usable_channels
from activations.messaging.policy import load_settings
from activations.messaging.send import run_pass
from activations.messaging.send_time import BEST_HOUR
from activations.messaging.templates import Templates


def set_clock(sandbox_state: Path, now: datetime) -> None:
    """The sandbox's recipients stamp nothing after this moment (sandbox/engagement.py's clock.json)."""
    sandbox_state.mkdir(parents=True, exist_ok=True)
    (sandbox_state / "clock.json").write_text(json.dumps({"now": int(now.timestamp())}) + "\n")


def send_through_the_day(since: datetime, until: datetime, sandbox_state: Path) -> tuple[int, int]:
    """A pass at each moment in (since, until) a best-hour campaign has a message due; (passes, sent)."""
    triggers = [t for t in declared_campaigns(load_manifest()).triggers if t.send_time == BEST_HOUR]
    if not triggers:
        return 0, 0
    campaigns = [t.campaign for t in triggers]
    channels, _ = load_usable_channels()  # a channel in error: its campaign's messages stay planned
    passes = sent = 0
    try:
        while (now := _next_due(campaigns, since, until)) is not None:
            set_clock(sandbox_state, now)
            with warehouse.connect() as con:
                sent += run_pass(con, triggers, channels, Templates(), load_settings(), now=now).sent
            passes += 1
            since = now
    finally:
        for channel in channels.values():
            channel.close()
    return passes, sent


def _next_due(campaigns: list[str], since: datetime, until: datetime) -> datetime | None:
    naive = [t.astimezone(UTC).replace(tzinfo=None) for t in (since, until)]
    with warehouse.connect(read_only=True) as con:
        if not warehouse.has_table(con, "activation", "message_ledger"):
            return None
        found = con.execute(f"""
            select min(due_at) from activation.message_ledger
            where state = 'planned' and due_at > ? and due_at < ?
              and campaign in ({", ".join("?" for _ in campaigns)})""", [*naive, *campaigns]).fetchone()[0]
    return found.replace(tzinfo=UTC) if found else None
