"""Ingestion: the landing folder into the raw tables, as the `raw/<table>` assets dbt's sources read.

One step loads every new or changed file (`activations.ingest.load_landing`) and reports each
raw table it feeds, plus the file ledger and the quarantine. Bad rows are quarantined and
never fail the step. A file that can't be read at all doesn't fail it either: the good files
flow on to dbt, and the broken one is visible as a failed (warning) check on
`raw/landing_files`, in the step's metadata and in error lines of its log, on every run until
it is fixed (the ledger retries failed files each time).
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from activations.ingest import FileResult, IngestReport, load_landing
from activations.ingest.contract import SOURCES
from activations.ingest.report import FAILED, LOADED, REPLACED
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse

LEDGER_KEY = dg.AssetKey(["raw", "landing_files"])
QUARANTINE_KEY = dg.AssetKey(["raw", "quarantine"])
READABLE_CHECK = "landing_files_readable"
_SHOWN = 10  # problems and files listed in metadata; all of them are in the warehouse


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


_KINDS = {"python", "duckdb"}


@dg.multi_asset(
    name="ingest_landing",
    group_name="raw",
    specs=[
        *(dg.AssetSpec(raw_key(s.name), kinds=_KINDS,
                       description=f"{s.description} Loaded from the landing folder {s.folder}/.")
          for s in SOURCES),
        dg.AssetSpec(LEDGER_KEY, kinds=_KINDS,
                     description="The ledger of landing files: which version of each file was loaded, failed or skipped."),
        dg.AssetSpec(QUARANTINE_KEY, kinds=_KINDS,
                     description="Rows that broke the landing contract, with file, line, field and reason."),
    ],
    check_specs=[dg.AssetCheckSpec(READABLE_CHECK, asset=LEDGER_KEY,
                                   description="Every landing file could be read (warning: the good files still load).")],
    pool=WAREHOUSE_POOL,
)
def ingest_landing(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: Landing) -> Iterator[Any]:
    """Load new and changed landing files into the raw tables; quarantine bad rows."""
    report = load_landing(landing.folder(), warehouse.file())
    context.log.info(str(report))
    for failed in report.failed_files:
        context.log.error(f"landing file {failed.file} could not be loaded: {failed.error}")
    for skipped in report.skipped_files:
        context.log.warning(f"landing file {skipped.file} was skipped: {skipped.error}")
    with warehouse.connect(read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in [f"raw.{s.name}" for s in SOURCES] + ["raw.landing_files", "raw.quarantine"]}
    for source in SOURCES:
        files = [f for f in report.files if f.source == source.name]
        yield dg.MaterializeResult(asset_key=raw_key(source.name), metadata={
            "dagster/row_count": counts[f"raw.{source.name}"],
            **_file_metadata(files),
        })
    yield dg.MaterializeResult(asset_key=LEDGER_KEY, metadata={
        "dagster/row_count": counts["raw.landing_files"],
        "seconds": round(report.seconds, 2),
        **_file_metadata(report.files),
        "files_unchanged": len(report.unchanged_files),
        "files_skipped": len(report.skipped_files),
        **({"skipped_files": _file_list(report.skipped_files)} if report.skipped_files else {}),
    })
    yield dg.MaterializeResult(asset_key=QUARANTINE_KEY, metadata={
        "dagster/row_count": counts["raw.quarantine"],
        "rows_quarantined": report.rows_quarantined,
        **_problems(report.files),
    })
    yield _readable_check(report)


def _file_metadata(files: list[FileResult]) -> dict[str, Any]:
    failed = [f for f in files if f.status == FAILED]
    metadata: dict[str, Any] = {
        "files_loaded": sum(f.status in (LOADED, REPLACED) for f in files),
        "files_failed": len(failed),
        "rows_loaded": sum(f.rows_loaded for f in files),
        "rows_quarantined": sum(f.rows_quarantined for f in files),
    }
    if failed:
        metadata["failed_files"] = _file_list(failed)
    return {**metadata, **_problems(files)}


def _problems(files: list[FileResult]) -> dict[str, Any]:
    problems = [str(p) for f in files for p in f.problems][:_SHOWN]
    if not problems:
        return {}
    lines = "\n".join(f"- `{p}`" for p in problems)
    return {"first_problems": dg.MetadataValue.md(f"{lines}\n\nAll of them: `select * from raw.quarantine`")}


def _file_list(files: list[FileResult]) -> dg.MetadataValue:
    rows = "\n".join(f"| `{f.file}` | {f.error or ''} |" for f in files[:_SHOWN])
    more = f"\n\n…and {len(files) - _SHOWN} more (see raw.landing_files)" if len(files) > _SHOWN else ""
    return dg.MetadataValue.md(f"| file | why |\n|---|---|\n{rows}{more}")


def _readable_check(report: IngestReport) -> dg.AssetCheckResult:
    failed = report.failed_files
    return dg.AssetCheckResult(
        asset_key=LEDGER_KEY,
        check_name=READABLE_CHECK,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(failed)} landing file(s) could not be loaded: " + ", ".join(f.file for f in failed[:_SHOWN])
                     if failed else "every landing file could be read"),
        metadata={"files_failed": len(failed), **({"failed_files": _file_list(failed)} if failed else {})},
    )


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_landing])
