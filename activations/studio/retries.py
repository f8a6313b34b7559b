"""Rows a destination rejected, with the reasons, and the console's retry button: it runs the same
`attiva retry SYNC` as a terminal, in its own process, so the sync takes and releases the warehouse
as any sync does and the console never holds it while a destination answers.

The retry outlives a restart of the console (its own session, its output in a log file); a thread
of the console waits for it and records how it ended in `activation.studio_actions`. A second retry
of a sync whose retry still runs is refused."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activations import warehouse
from activations.studio import audit, commands, reading
from activations.studio.privacy import mask_text

SAMPLE = 10  # rejected rows listed per sync
REASONS = 5  # most common reasons listed per sync
SETTLE_WAIT = 3600.0  # seconds the outcome waits for a writer to let go of the file
_running: dict[str, subprocess.Popen] = {}
_lock = threading.Lock()


@dataclass
class Rejects:
    sync: str
    pending: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)  # (reason, rows), most common first
    rows: list[dict[str, Any]] = field(default_factory=list)
    last_retry: dict[str, Any] | None = None  # audit's row of the latest retry from the console


def rejects(con, syncs: list[str], personal: bool) -> dict[str, Rejects]:
    """Each sync's rows waiting to be resent (activation.sync_rejects), with the latest console retry;
    keys and reasons masked unless `personal` (a key may be an email, a reason may quote one)."""
    found = {name: Rejects(name) for name in syncs}
    if not syncs:
        return found
    if warehouse.has_table(con, "activation", "sync_rejects"):
        marks = ", ".join("?" for _ in syncs)
        for sync, reason, rows in con.execute(f"""
                select sync_name, coalesce(reason, kind, '?'), count(*) from activation.sync_rejects
                where sync_name in ({marks}) group by all order by 3 desc, 2""", syncs).fetchall():
            found[sync].pending += rows
            if len(found[sync].reasons) < REASONS:
                found[sync].reasons.append((reason if personal else mask_text(reason), rows))
        cursor = con.execute(f"""
            select sync_name, row_key, operation, kind, reason, http_status, attempts, last_seen_at
            from activation.sync_rejects where sync_name in ({marks})
            qualify row_number() over (partition by sync_name order by last_seen_at desc, row_key) <= {SAMPLE}
            order by sync_name, last_seen_at desc, row_key""", syncs)
        names = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            shown = dict(zip(names, row, strict=True))
            if not personal:
                shown["row_key"], shown["reason"] = mask_text(shown["row_key"]), mask_text(shown["reason"])
            found[shown["sync_name"]].rows.append(shown)
    for sync, action in audit.latest(con, "retry", syncs).items():
        found[sync].last_retry = action
    return found


class RetryRefused(RuntimeError):
    """The retry cannot start now; the message says why."""


def start(warehouse_path: Path, sync: str, actor: str, log_dir: Path, env: dict[str, str] | None = None) -> str:
    """Start `attiva retry SYNC` in its own process and record it; the action's id. RetryRefused when
    a retry of this sync started here still runs; WarehouseBusy if a writer keeps the file."""
    with _lock:
        if sync in _running and _running[sync].poll() is None:
            raise RetryRefused(f"a retry of {sync} is already running (started from this console)")
        with reading.writing(warehouse_path) as con:
            action_id = audit.record(con, "retry", sync, actor, outcome="running")
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"retry-{sync}-{action_id}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                commands.attiva("retry", sync, warehouse=warehouse_path),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=commands.environment(**(env or {})))
        _running[sync] = process
    threading.Thread(target=_settle_when_done, args=(warehouse_path, action_id, process, log), daemon=True,
                     name=f"retry-{sync}").start()
    return action_id


def wait(sync: str, timeout: float) -> int | None:
    """The exit code of this console's retry of `sync` once it ended (None if none ran); for tests and shutdown."""
    process = _running.get(sync)
    return None if process is None else process.wait(timeout)


def _settle_when_done(warehouse_path: Path, action_id: str, process: subprocess.Popen, log: Path) -> None:
    code = process.wait()
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    outcome = {0: "success", 4: "delivered except invalid rows"}.get(code, f"not delivered (exit code {code})")
    # A build may hold the file a while: wait for it (this thread has nothing else to do).
    con = warehouse.open_when_free(warehouse_path, wait=SETTLE_WAIT, say=lambda _: None)
    try:
        audit.settle(con, action_id, outcome, detail="\n".join(lines[-6:]), exit_code=code)
    finally:
        con.close()
