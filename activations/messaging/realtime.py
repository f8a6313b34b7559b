"""The always-on event path: `attiva realtime`, one long-lived process from new events to messages.

The Dagster event path (fresh_events.py through the `fresh_events` sensor) pays, for every batch of
events, a sensor tick (up to 5 s), a run process's start (about 6 s) and a dbt process that imports
and checks the project (about 4 s) before any model runs: 21-26 s p95 at best (docs/benchmarks.md).
This process pays them once. It keeps dbt in memory with the project parsed, watches the landing
folder's event folders, and for each new batch runs the same three steps (fresh_events.run: load the
event files, run only the event-driven triggers and the incremental models they read, one messaging
pass over those campaigns) with the same guarantees: consent, suppression, caps and quiet hours at
send time, and the ledger's one decision per trigger key and step, whoever else sends.

Between batches it holds nothing: dbt-duckdb keeps its database open after a run (a module-level
environment), so `release()` closes it, and every other writer (a full refresh, `attiva forget`)
takes its turn on the warehouse file as with any process (activations/warehouse.py). While one of
them holds the file, new events wait for it.

What changes is picked up without a restart: the dbt project, channels.yml, messaging.yml and the
templates are checked before every batch (their files' times) and read again when they changed.
Steps whose delay has passed (a reminder 2 h after the cart) need no event: a pass runs every
`due_every` seconds even when nothing arrived.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from activations import settings
from activations.build import dbt_vars
from activations.messaging import fresh_events
from activations.messaging.campaigns import declared_campaigns
from activations.messaging.channels import load_usable_channels
from activations.messaging.policy import load_settings
from activations.messaging.templates import Templates
from activations.warehouse import wait_until_free

TARGET_FOLDER = "dbt_target_realtime"  # beside the warehouse: this process's own manifest and partial parse
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "tests")


def newest_change(paths: list[Path]) -> float:
    """The latest modification time of these files and of every file and folder under them (0 if none)."""
    newest = 0.0
    for path in paths:
        if not path.exists():
            continue
        newest = max(newest, path.stat().st_mtime)
        if path.is_dir():
            for folder, _, files in os.walk(path):
                newest = max(newest, os.stat(folder).st_mtime, *(os.stat(os.path.join(folder, f)).st_mtime
                                                                 for f in files))
    return newest


class InProcessDbt:
    """dbt inside this process: the project parsed once (again when its files change), each run only the
    models asked for, and the warehouse file let go after each run."""

    def __init__(self, warehouse: Path, as_of: datetime | None):
        self.warehouse = Path(warehouse).resolve()
        self.target = self.warehouse.parent / TARGET_FOLDER
        self.project = settings.dbt_project_dir()
        self.vars = ["--vars", json.dumps(dbt_vars(as_of))] if as_of is not None else []
        self._runner = None
        self._parsed_at = -1.0
        # The profile reads the warehouse's path from the environment when dbt connects.
        os.environ.update(ATTIVA_WAREHOUSE=str(self.warehouse), DBT_SEND_ANONYMOUS_USAGE_STATS="false")

    def _common(self) -> list[str]:
        return ["--project-dir", str(self.project), "--profiles-dir", str(self.project),
                "--target-path", str(self.target), "--log-path", str(self.target / "logs"), "--quiet", *self.vars]

    def parse_if_changed(self) -> dict | None:
        """The project's manifest when it was parsed now (first call, or a file of the project changed), else None."""
        from dbt.cli.main import dbtRunner

        changed = newest_change([self.project / part for part in PROJECT_PARTS])
        if self._runner is not None and changed <= self._parsed_at:
            return None
        result = dbtRunner().invoke(["parse", *self._common()])
        self.release()
        if not result.success:
            raise fresh_events.FreshEventsError(f"dbt could not parse the project: {result.exception}")
        self._runner = dbtRunner(manifest=result.result)
        self._parsed_at = changed
        return json.loads((self.target / "manifest.json").read_text())

    def run(self, models: list[str], warehouse: Path, as_of: datetime | None) -> int:
        """fresh_events.run_models, in this process: how many models ran. Raises FreshEventsError."""
        wait_until_free(self.warehouse)  # dbt's own connect retries cover seconds, a full refresh takes minutes
        try:
            # No manifest or run_results.json: this process reads the results from memory.
            result = self._runner.invoke(["run", "--select", fresh_events.selection(models), "--no-write-json",
                                          *self._common()])
        finally:
            self.release()
        nodes = list(getattr(result.result, "results", None) or [])
        if not result.success:
            failed = [f"{n.node.unique_id}: {(n.message or '').strip()}" for n in nodes
                      if str(n.status) in ("error", "fail")]
            raise fresh_events.FreshEventsError("dbt run of the event-driven triggers failed: "
                                                + ("; ".join(failed) or str(result.exception)))
        return sum(1 for n in nodes if str(n.status) == "success")

    @staticmethod
    def release() -> None:
        """Close the database dbt-duckdb keeps open after a run, so other processes may take the file."""
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager as Manager

        with Manager._LOCK:
            if Manager._ENV is not None:
                Manager._ENV.close()
            Manager._ENV = None


@dataclass
class Batch:
    """What one turn of the loop did, for the log."""
    report: fresh_events.FreshEventsReport | None
    error: str | None = None

    @property
    def worth_saying(self) -> bool:
        if self.error or self.report is None:
            return True
        outcomes = self.report.messages.outcomes if self.report.messages is not None else {}
        return bool(self.report.files_loaded or any(outcomes.values()))


class Realtime:
    """The loop's state: dbt in memory, and the settings as last read (again when their files change)."""

    def __init__(self, landing: Path, warehouse: Path, as_of: datetime | None = None):
        self.landing = Path(landing)
        self.warehouse = Path(warehouse)
        self.as_of = as_of  # pinned "now" (a replay, a test); None: the clock
        self.dbt = InProcessDbt(self.warehouse, as_of)
        self._settings_changed_at = -1.0
        self._manifest: dict = {}
        self.channels: dict = {}
        self.channel_errors: dict = {}
        self.triggers: list = []
        self.broken: dict[str, str] = {}  # event-driven campaigns that cannot be sent, until said
        self.caught_up = False  # whether a turn has run the models since this process started

    def _refresh(self) -> None:
        """Parse the project and read the settings again where their files changed; the campaigns with them."""
        manifest = self.dbt.parse_if_changed()
        changed = newest_change([settings.channels_path(), settings.messaging_path(), settings.templates_dir()])
        if manifest is None and changed <= self._settings_changed_at:
            return
        self._manifest = manifest or self._manifest
        self.close()
        self.channels, self.channel_errors = load_usable_channels()
        self.templates, self.policy = Templates(), load_settings()
        campaigns = declared_campaigns(self._manifest, self.templates)
        self.triggers = fresh_events.event_driven(campaigns.triggers, self._manifest)
        # Said once per reading, not every turn: a broken campaign stays broken until its files change.
        self.broken = {b.campaign: b.reason for b in fresh_events.event_driven(campaigns.broken, self._manifest)}
        self._settings_changed_at = changed

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.channels = {}

    def turn(self) -> Batch:
        """Load new event files, run the event-driven triggers' models, send what is due for them."""
        try:
            self._refresh()
            broken, self.broken = self.broken, {}
            ready = [t for t in self.triggers if all(c in self.channels for c in t.channels)]
            now = self.as_of or datetime.now(UTC)
            # The first turn runs the models whatever it loads: a predecessor killed between loading event files
            # and running them left rows no later batch would carry.
            report = fresh_events.run(self.landing, self.warehouse, ready, self.channels, self.templates,
                                      self.policy, now, pinned=self.as_of is not None, run_models=self.dbt.run,
                                      catch_up=not self.caught_up)
            self.caught_up = self.caught_up or bool(ready)  # with none ready, nothing ran: catch up once some are
        except Exception as exc:  # noqa: BLE001 - the loop goes on: the next turn tries again
            return Batch(None, f"{type(exc).__name__}: {exc}")
        unsent = dict(broken)
        unsent |= {t.campaign: f"channel {c!r}: {self.channel_errors.get(c, 'not in channels.yml')}"
                  for t in self.triggers for c in t.channels if c not in self.channels}
        if report.messages is not None:
            unsent.update(report.messages.stopped_campaigns(ready))
        return Batch(report, "; ".join(f"{k}: {v}" for k, v in sorted(unsent.items())) or None)


def event_folders(landing: Path) -> list[Path]:
    """The events source's folders: a new file changes its folder's time, which is cheaper to watch than files."""
    root = Path(landing) / fresh_events.EVENTS_SOURCE
    if not root.is_dir():
        return []
    return [Path(folder) for folder, _, _ in os.walk(root)]


def folder_times(landing: Path) -> dict[Path, int]:
    out = {}
    for folder in event_folders(landing):
        try:
            out[folder] = folder.stat().st_mtime_ns
        except FileNotFoundError:
            continue
    return out


def turns(loop: Realtime, stop: threading.Event, poll: float = 0.1, due_every: float = 30.0
          ) -> Iterator[Batch]:
    """A turn whenever the event folders change, and every `due_every` seconds anyway; until `stop` is set."""
    seen: dict[Path, int] | None = None
    last = 0.0
    backoff = 0.0
    while not stop.is_set():
        now_seen = folder_times(loop.landing)
        if now_seen != seen or time.monotonic() - last >= due_every:
            seen, last = now_seen, time.monotonic()
            batch = loop.turn()
            yield batch
            # A failing turn (dbt error, warehouse gone) is tried again, less and less often, up to due_every.
            backoff = min(due_every, max(1.0, backoff * 2)) if batch.report is None else 0.0
            if backoff:
                seen = None
                stop.wait(backoff)
                continue
        stop.wait(poll)


def run_forever(landing: Path, warehouse: Path, as_of: datetime | None, *, poll: float, due_every: float,
                once: bool, say: Callable[[str], None]) -> int:
    """The `attiva realtime` loop: until SIGTERM or SIGINT (the current turn finishes first). 1 if the
    last turn failed or, with `once`, left a campaign unsent (broken, or its channel unusable)."""
    loop = Realtime(landing, warehouse, as_of)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    say(f"attiva realtime: watching {Path(landing) / fresh_events.EVENTS_SOURCE} for {warehouse}; "
        f"due steps every {due_every:g}s")
    failed, first = False, True
    try:
        for batch in turns(loop, stop, poll, due_every):
            failed = batch.report is None or (once and batch.error is not None)
            if batch.worth_saying or first:  # the first always: it says the process is ready
                first = False
                stamp = datetime.now(UTC).strftime("%H:%M:%S")
                if batch.report is not None:
                    say(f"[{stamp}] {batch.report}")
                if batch.error:
                    say(f"[{stamp}] not sent: {batch.error}")
            if once:
                break
    finally:
        loop.close()
    return 1 if failed else 0
