"""Build the warehouse: run dbt (build = models + tests) over the raw tables.

dbt runs in a subprocess so its global state and logs stay out of the caller (the CLI,
a Dagster step, a test), and always with `as_of` passed explicitly, so every model of a
run agrees on what "now" is.

A full build is two dbt builds with probabilistic matching between them: seeds, staging and
the identity graph's nodes first (which identifiers are shared, from the records alone), then
the matching step (activations/identity/matching.py) writes its links from the staging
records, then web listening's step scores the staged mentions (activations/listening/scoring.py), then
everything else, whose identity models read those links and listening marts those scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from activations import settings
from activations.warehouse import wait_until_free


@dataclass
class BuildResult:
    ok: bool
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)  # status -> nodes
    failures: list[str] = field(default_factory=list)  # "node: message"
    output: str = ""
    matching: str = ""  # what the matching step did, when it ran
    matching_seconds: float = 0.0

    def add(self, other: BuildResult) -> BuildResult:
        """This build followed by `other`: one result, as if a single build."""
        counts = dict(self.counts)
        for status, n in other.counts.items():
            counts[status] = counts.get(status, 0) + n
        return BuildResult(ok=self.ok and other.ok, seconds=self.seconds + other.seconds, counts=counts,
                           failures=self.failures + other.failures, output=self.output + other.output,
                           matching=self.matching or other.matching)

    def __str__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        lines = [f"dbt build {status} in {self.seconds:.1f}s ({counts})"]
        lines += [f"  - {f}" for f in self.failures[:20]]
        if self.matching:
            lines.append(self.matching)
        return "\n".join(lines)


def dbt_vars(as_of: datetime, extra: dict | None = None) -> dict:
    """The vars every dbt invocation gets: as_of in UTC, plus any overrides."""
    return {"as_of": as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), **(extra or {})}


# dbt's unit tests check the models' SQL on fixed inputs, not the data: as dbt advises, they run
# where the SQL changes (`make test`: tests/dbt/test_sql_unit_tests.py, and on Spark), not in every
# production build, where they cost a quarter of a small warehouse's build (~9 of 40 s).
WITHOUT_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]


def dbt_command(command: str, as_of: datetime, select: str | None = None, extra_vars: dict | None = None,
                full_refresh: bool = False, target: str | None = None, exclude: str | None = None,
                indirect_selection: str | None = None) -> list[str]:
    """The dbt CLI arguments for `command` (build, run, test, seed) on Attiva's project."""
    project = settings.dbt_project_dir()
    args = [command, "--project-dir", str(project), "--profiles-dir", str(project),
            "--vars", json.dumps(dbt_vars(as_of, extra_vars))]
    if target:
        args += ["--target", target]
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    if indirect_selection:
        args += ["--indirect-selection", indirect_selection]
    if command == "build":
        args += WITHOUT_UNIT_TESTS
    if full_refresh:
        args.append("--full-refresh")
    return args


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(args: list[str], warehouse: Path | None = None, echo: bool = False) -> BuildResult:
    """Run dbt with the warehouse path in the environment; parse run_results.json."""
    warehouse = Path(warehouse or settings.warehouse_path()).resolve()
    # dbt's target and logs sit beside the warehouse they describe, so two warehouses
    # (a test's and the demo's) can build at the same time without sharing a manifest.
    # ... and a Spark build from the same warehouse keeps its own (dbt_target_spark).
    dbt_target = args[args.index("--target") + 1] if "--target" in args else "duckdb"
    suffix = "" if dbt_target == "duckdb" else f"_{dbt_target}"
    target = warehouse.parent / f"dbt_target{suffix}"
    env = {**os.environ, "ATTIVA_WAREHOUSE": str(warehouse), "DBT_TARGET_PATH": str(target),
           "DBT_LOG_PATH": str(warehouse.parent / f"dbt_logs{suffix}"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           # dbt runs in the project folder: the spark target's folder must not be relative to it.
           "ATTIVA_SPARK_DIR": str(settings.spark_dir())}
    project = settings.dbt_project_dir()
    results_file = target / "run_results.json"
    results_file.unlink(missing_ok=True)
    started = datetime.now()
    if dbt_target == "duckdb":  # dbt's own retries cover a few seconds (profiles.yml): wait in line first
        wait_until_free(warehouse)
    proc = subprocess.run([dbt_executable(), *args], cwd=project, env=env, capture_output=not echo, text=True)
    seconds = (datetime.now() - started).total_seconds()
    result = BuildResult(ok=proc.returncode == 0, seconds=seconds, output=(proc.stdout or "") + (proc.stderr or ""))
    if results_file.exists():
        for node in json.loads(results_file.read_text()).get("results", []):
            status = str(node.get("status"))
            result.counts[status] = result.counts.get(status, 0) + 1
            if status in ("error", "fail"):
                result.failures.append(f"{node.get('unique_id')}: {(node.get('message') or '').strip()}")
    if not result.ok and not result.failures:
        result.failures.append(result.output.strip()[-2000:])
    return result


# What the matching step reads: built (with the tests on it alone) before matching runs. The
# staged records it scores, and the identity graph's nodes, whose shared identifiers it sets
# aside (int_identity__nodes never counts matching's own links).
BEFORE_MATCHING = "resource_type:seed path:models/staging +int_identity__nodes"


def build_warehouse(as_of: datetime | None = None, warehouse: Path | None = None, select: str | None = None,
                    full_refresh: bool = False, echo: bool = False, target: str | None = None) -> BuildResult:
    """`dbt build` (seeds, models, tests) on the warehouse; returns what passed and failed.

    `target` is a dbt target of the profile (default: ATTIVA_DBT_TARGET, else duckdb). On
    `spark` the raw tables are first copied from the DuckDB warehouse (activations/spark.py), with
    the links matching last wrote there: matching itself runs on DuckDB only.
    Without `select`, on DuckDB: staging, then matching, then the rest (see the module's doc);
    with `select`, the selection alone, no matching.
    """
    target = target or settings.dbt_target()
    as_of = as_of or settings.as_of()
    if target == "spark":
        from activations import spark

        with spark.session() as session:
            spark.land_raw(session, warehouse)
            spark.land_matching_links(session, warehouse)
    if select or target == "spark":
        args = dbt_command("build", as_of, select=select, full_refresh=full_refresh, target=target)
        return run_dbt(args, warehouse=warehouse, echo=echo)
    staging = run_dbt(dbt_command("build", as_of, select=BEFORE_MATCHING, full_refresh=full_refresh,
                                  indirect_selection="cautious"), warehouse=warehouse, echo=echo)
    if not staging.ok:
        return staging
    started = datetime.now()
    try:
        matched = match_records(warehouse)  # a dbt full refresh rebuilds from the links: no reason to rescore
    except Exception as exc:  # noqa: BLE001 - the build goes on with the links of the last run, and fails loudly
        matched = None
        failure = f"matching: {type(exc).__name__}: {exc} (the identity models used the links of the last run)"
    try:  # web listening's scores (activations/listening/scoring.py): staging built, the marts not yet
        listened = score_mentions(warehouse)
    except Exception as exc:  # noqa: BLE001 - like matching: the marts use the scores of the last run, and it fails
        listened = None
        failure_listening = f"listening: {type(exc).__name__}: {exc} (the listening marts used the last run's scores)"
    rest = run_dbt(dbt_command("build", as_of, exclude=BEFORE_MATCHING, full_refresh=full_refresh),
                   warehouse=warehouse, echo=echo)
    result = staging.add(rest)
    result.matching_seconds = (datetime.now() - started).total_seconds() - rest.seconds
    result.seconds += result.matching_seconds
    if matched is None:
        result.ok = False
        result.failures.insert(0, failure)
    else:
        result.matching = str(matched)
    if listened is None:
        result.ok = False
        result.failures.insert(0, failure_listening)
    else:
        result.matching = "\n".join(part for part in (result.matching, str(listened)) if part)
    return result


def score_mentions(warehouse: Path | None = None):
    """The listening step on the DuckDB warehouse (activations/listening/scoring.py); returns its ScoringResult."""
    from activations.listening.scoring import run_scoring

    return run_scoring(warehouse)


def match_records(warehouse: Path | None = None, rescore_all: bool = False):
    """The matching step on the DuckDB warehouse (activations/identity/matching.py); returns its MatchingResult."""
    from activations.identity.matching import run_matching
    from activations.warehouse import connect

    with connect(warehouse) as con:
        return run_matching(con, now=datetime.now(UTC).replace(tzinfo=None), rescore_all=rescore_all)
