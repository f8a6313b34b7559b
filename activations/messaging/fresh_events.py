"""The event path: fresh event files to triggered messages in seconds, beside the full refresh.

A cart reminder is only worth sending soon after the cart. The full refresh (ingest everything,
`dbt build` of the whole project with its tests, gates, syncs) takes minutes at scale, so
event-driven triggers get a narrow path of their own:

1. load the new files of the `events` source only (ingestion as always: file ledger, quarantine);
2. `dbt run` only the event-driven triggers (the `trg_*` models that read `events`) and the
   incremental models upstream of them (identity, events, orders), which take in just the new
   rows: the work follows what arrived, not the size of the warehouse;
3. a messaging pass over those triggers only (the same `run_pass`: consent, suppression, caps,
   quiet hours, holdout, the ledger's exactly-once).

Why `dbt run` and not `dbt build` (no tests): the 29 data tests and 6 unit tests on these models
about double dbt's execution time (measured at 10k customers: 5.5-6.2 s with them, 2.4-3.9 s
without, on a busy 2-core machine), and they run on the next refresh of the whole graph, minutes
later. What could make a message wrong is checked again at send time whatever the data
tests say: the occurrence must still hold and not have exited or expired, the person must have
consent and not be suppressed, and the ledger sends one message per trigger key and step, so a
duplicated trigger row cannot send twice. Malformed event rows never reach dbt: ingestion
quarantines them.

Time: a run pinned to an `as_of` passes it to dbt, like every other run. An unpinned run (the
production case: "now") does not, and dbt reads the database's current time: dbt re-parses the
whole project whenever its vars change, which would add a full parse (about 3-10 s) to every
event, while unchanged vars let it reuse its partial parse in its own target folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activations import settings
from activations.build import dbt_executable, dbt_vars
from activations.ingest import IngestReport, load_landing
from activations.messaging.delivery import Channel
from activations.messaging.policy import Settings, Trigger
from activations.messaging.send import PassReport, run_pass
from activations.messaging.templates import Templates
from activations.warehouse import connect as connect_warehouse

EVENTS_SOURCE = "events"
EVENTS_MODEL = "events"  # marts.events: a trigger reading it is event-driven
RAW_EVENTS = "source:raw.events"  # what this path loads: only models downstream of it have anything new
TARGET_FOLDER = "dbt_target_events"  # beside the warehouse; only this path writes it, so its partial parse holds


class FreshEventsError(RuntimeError):
    """dbt failed on the event path; names the failing models."""


@dataclass
class FreshEventsReport:
    files_loaded: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    dbt_models: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # ingest, dbt, send
    messages: PassReport | None = None

    def __str__(self) -> str:
        took = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        head = (f"{self.files_loaded} event file(s), {self.rows_loaded} row(s) loaded "
                f"({self.rows_quarantined} quarantined); {self.dbt_models} dbt model(s) run; {took}")
        return f"{head}\n{self.messages}" if self.messages is not None else head


def event_driven(triggers: list[Trigger], manifest: Mapping[str, Any]) -> list[Trigger]:
    """The triggers whose model reads `events` directly: what fresh events can make due."""
    reads_events = {
        node["name"] for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model"
        and any(parent.split(".")[-1] == EVENTS_MODEL and parent.startswith("model.")
                for parent in node.get("depends_on", {}).get("nodes", []))
    }
    return [t for t in triggers if t.name in reads_events]


def selection(models: list[str]) -> str:
    """The models and their incremental ancestors that read the events: what new event rows change.

    Views are left out (definitions, not data: they read the new rows as they stand, and are
    recreated by the full refresh when the project changes), and so are the ancestors that are
    tables, such as marts.products, and the incremental ones that do not read the events, such as
    int_orders: they change with other landing files, which only the full refresh loads. Both need
    the warehouse built once, as the event path always does.
    """
    if not models:
        raise ValueError("no event-driven trigger to build")
    names = sorted(models)
    return " ".join([*(f"+{m},config.materialized:incremental,{RAW_EVENTS}+" for m in names), *names])


def dbt_run_args(models: list[str], target: Path, as_of: datetime | None) -> list[str]:
    """`dbt run` of `selection(models)`; `as_of` only when the run is pinned."""
    project = settings.dbt_project_dir()
    args = ["run", "--project-dir", str(project), "--profiles-dir", str(project), "--select", selection(models),
            "--target-path", str(target), "--log-path", str(target / "logs")]
    if as_of is not None:
        args += ["--vars", json.dumps(dbt_vars(as_of))]
    return args


def run_models(models: list[str], warehouse: Path, as_of: datetime | None) -> int:
    """Run the models (and their parents) on the warehouse; how many ran. Raises FreshEventsError."""
    warehouse = Path(warehouse).resolve()
    target = warehouse.parent / TARGET_FOLDER
    env = {**os.environ, "ATTIVA_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    results = target / "run_results.json"
    results.unlink(missing_ok=True)
    proc = subprocess.run([dbt_executable(), *dbt_run_args(models, target, as_of)], cwd=settings.dbt_project_dir(),
                          env=env, capture_output=True, text=True)
    nodes = json.loads(results.read_text()).get("results", []) if results.exists() else []
    failed = [f"{n.get('unique_id')}: {(n.get('message') or '').strip()}" for n in nodes
              if n.get("status") in ("error", "fail")]
    if proc.returncode != 0:
        detail = "; ".join(failed) or (proc.stdout + proc.stderr).strip()[-2000:]
        raise FreshEventsError(f"dbt run of the event-driven triggers failed: {detail}")
    return sum(1 for n in nodes if n.get("status") == "success")


def _loaded(report: IngestReport) -> tuple[int, int, int]:
    files = [f for f in report.files if f.rows_loaded or f.rows_quarantined]
    return len(files), sum(f.rows_loaded for f in files), sum(f.rows_quarantined for f in files)


RunModels = Callable[[list[str], Path, "datetime | None"], int]


def run(landing: Path, warehouse: Path, triggers: list[Trigger], channels: Mapping[str, Channel],
        templates: Templates, policy: Settings, now: datetime, *, pinned: bool,
        run_models: RunModels = run_models, catch_up: bool = False) -> FreshEventsReport:
    """Load new event files, run the event-driven triggers' models, send what is due for those triggers.

    With nothing new to load, dbt is skipped (the tables are as fresh as the files) and only the pass
    runs. `pinned`: `now` is a chosen as_of (tests, replays) that dbt must use too. `run_models`: a dbt
    process per run (Dagster's event path), or dbt kept in memory (`attiva realtime`, realtime.py).
    `catch_up`: run the models even with nothing new, for rows a run killed after loading them left behind.
    """
    report = FreshEventsReport()
    started = time.monotonic()
    ingest = load_landing(landing, warehouse, sources={EVENTS_SOURCE})
    report.files_loaded, report.rows_loaded, report.rows_quarantined = _loaded(ingest)
    report.seconds["ingest"] = time.monotonic() - started
    if triggers and (report.rows_loaded or catch_up):  # no campaign to send (all broken): nothing to build
        started = time.monotonic()
        report.dbt_models = run_models([t.name for t in triggers], warehouse, now if pinned else None)
        report.seconds["dbt"] = time.monotonic() - started
    started = time.monotonic()
    with connect_warehouse(warehouse) as con:
        report.messages = run_pass(con, triggers, channels, templates, policy, now.astimezone(UTC))
    report.seconds["send"] = time.monotonic() - started
    return report
