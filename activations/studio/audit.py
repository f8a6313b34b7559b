"""What people did from the console besides a campaign's pause, resume and test send (those live in
`activation.campaign_actions`, which the send path reads): one row per action (`retry` of a sync,
`erase` of a customer), updated once with its outcome. Who (`actor`), when (UTC), what (`action`,
`target`: a sync's name; none for an erasure), how it ended (`outcome`, the command's `exit_code`,
the last lines of its output in `detail`, an erasure's `request_id`); never a person's email, phone
or customer id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from activations import warehouse

TABLE = "activation.studio_actions"
COLUMNS = ("action_id string, action string, target string, actor string, acted_at timestamp, "
           "outcome string, finished_at timestamp, exit_code integer, request_id string, detail string")


def record(con, action: str, target: str | None, actor: str, outcome: str = "running") -> str:
    """A new action (`con` writes; the table is made if missing); its id."""
    con.execute("create schema if not exists activation")
    con.execute(f"create table if not exists {TABLE} ({COLUMNS})")
    action_id = uuid.uuid4().hex[:12]
    con.execute(f"insert into {TABLE} (action_id, action, target, actor, acted_at, outcome) values (?, ?, ?, ?, ?, ?)",
                [action_id, action, target, actor, _now(), outcome])
    return action_id


def settle(con, action_id: str, outcome: str, *, detail: str | None = None, exit_code: int | None = None,
           request_id: str | None = None) -> None:
    con.execute(f"update {TABLE} set outcome = ?, finished_at = ?, detail = ?, exit_code = ?, request_id = ? "
                "where action_id = ?", [outcome, _now(), detail, exit_code, request_id, action_id])


def latest(con, action: str, targets: list[str]) -> dict[str, dict]:
    """Each target's latest action of that kind, as a dict of the columns."""
    if not targets or not warehouse.has_table(con, "activation", "studio_actions"):
        return {}
    marks = ", ".join("?" for _ in targets)
    cursor = con.execute(f"""
        select * from {TABLE} where action = ? and target in ({marks})
        qualify row_number() over (partition by target order by acted_at desc) = 1""", [action, *targets])
    names = [d[0] for d in cursor.description]
    return {row[2]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
