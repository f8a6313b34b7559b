"""Alerts: what went wrong in a run, in the warehouse table `activation.alerts`, one row per cause.

A cause is a check that failed with severity ERROR (a quality gate, a dbt test, a predictive
model refused by its gate: the asset and what failed), or a failed step that no failed check
explains (the assets it did not materialize and its error), or, when no step failed, the run's
own failure (a crash, a cancelled run). A run that succeeded can have causes too: a check that
does not block (the predictive models') fails without failing its step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from activations import warehouse

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

ALERTS_TABLE = "activation.alerts"
_ERROR_CHARS = 4000
_ASSETS_SHOWN = 10


@dataclass(frozen=True)
class Alert:
    run_id: str
    job_name: str
    asset_key: str | None  # the failed asset(s), e.g. marts/customers
    step_key: str | None
    check_name: str | None
    error: str
    failed_at: datetime  # UTC

    def __str__(self) -> str:
        what = self.asset_key or self.step_key or f"run {self.run_id}"
        check = f" (check {self.check_name})" if self.check_name else ""
        return f"{what}{check} failed in run {self.run_id} of {self.job_name}: {self.error}"


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _error_text(error: SerializableErrorInfo | None) -> str:
    """The root cause first, then what wrapped it (Dagster wraps a step's error in its own)."""
    parts: list[str] = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return "; raised as: ".join(p for p in reversed(parts) if p)[:_ERROR_CHARS] or "unknown error"


def _check_error(evaluation: dg.AssetCheckEvaluation) -> str:
    metadata = evaluation.metadata or {}
    for key in ("failed_expectations", "dagster_dbt/failed_row_count"):
        if key in metadata:
            value = getattr(metadata[key], "value", metadata[key])
            return (f"{value} failing row(s)" if key.startswith("dagster_dbt") else str(value))[:_ERROR_CHARS]
    return (evaluation.description or "check failed")[:_ERROR_CHARS]


def alerts_for_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[Alert]:
    """What went wrong in a run, failed or not, read from its event log (none for a clean run)."""
    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION,
             dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION,
             dg.DagsterEventType.RUN_FAILURE}
    found: list[Alert] = []
    planned: dict[str, list[str]] = {}  # step -> asset keys
    done: set[str] = set()
    explained: set[str] = set()  # steps whose failure a failed check explains
    step_failures = []
    run_failure = None
    for entry in instance.all_logs(run.run_id, of_type=kinds):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                found.append(Alert(run.run_id, run.job_name, evaluation.asset_key.to_user_string(), event.step_key,
                                   evaluation.check_name, _check_error(evaluation), _utc(entry.timestamp)))
                if event.step_key:
                    explained.add(event.step_key)
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED and event.asset_key is not None:
            planned.setdefault(event.step_key or "", []).append(event.asset_key.to_user_string())
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key is not None:
            done.add(event.asset_key.to_user_string())
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            step_failures.append((entry, event))
        elif kind == dg.DagsterEventType.RUN_FAILURE:
            run_failure = (entry, event)
    for entry, event in step_failures:
        if event.step_key in explained:
            continue
        missing = [k for k in planned.get(event.step_key or "", []) if k not in done]
        assets = ", ".join(missing[:_ASSETS_SHOWN]) + (f" (+{len(missing) - _ASSETS_SHOWN} more)"
                                                       if len(missing) > _ASSETS_SHOWN else "")
        found.append(Alert(run.run_id, run.job_name, assets or None, event.step_key, None,
                           _error_text(event.step_failure_data.error), _utc(entry.timestamp)))
    if not found and run_failure is not None:
        entry, event = run_failure
        found.append(Alert(run.run_id, run.job_name, None, None, None,
                           (event.message or "run failed")[:_ERROR_CHARS], _utc(entry.timestamp)))
    return found


def record(path: Path, alerts: list[Alert]) -> int:
    """Insert the alerts not recorded yet (a sensor may see a run twice); returns how many were new."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.connect(path) as con:
        con.execute("create schema if not exists activation")
        con.execute(f"create table if not exists {ALERTS_TABLE} (run_id varchar not null, job_name varchar, "
                    "asset_key varchar, step_key varchar, check_name varchar, error varchar not null, "
                    "failed_at timestamp not null, recorded_at timestamp not null)")
        new = 0
        for a in alerts:
            exists = con.execute(
                f"select count(*) from {ALERTS_TABLE} where run_id = ? and step_key is not distinct from ? "
                "and asset_key is not distinct from ? and check_name is not distinct from ?",
                [a.run_id, a.step_key, a.asset_key, a.check_name]).fetchone()[0]
            if not exists:
                con.execute(f"insert into {ALERTS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)",
                            [a.run_id, a.job_name, a.asset_key, a.step_key, a.check_name, a.error,
                             a.failed_at.astimezone(UTC).replace(tzinfo=None), now])
                new += 1
        return new
