"""Quality gates: a Great Expectations suite per table that other systems act on.

Each gate checks that ids are unique and present, emails look like emails (where set),
consent columns exist and are never null, and the row count stays within bounds of the
last count that passed its gate.

Where previous row counts live: in the warehouse, `activation.quality_gate_counts`, one row
per evaluation (passed or not). The baseline is the latest *passed* count, so a bad run can't
become the reference a rerun is compared against. It lives beside the data it describes:
rebuilding the warehouse from scratch drops it too (no stale baseline), it survives a new
Dagster instance (SQLite to Postgres, `make clean` of .dagster_home alone), and the activation
engine and a plain SQL client can read it.

GX reads through pandas: great_expectations' SQL data sources need a SQLAlchemy dialect
for DuckDB (duckdb-engine), which is not installed. Only the gated columns are read, over
a read-only connection, but GX's pandas metrics copy them: measured on 1M customers, 2.9 s
and about 430 MB of peak memory (so ~4 GB at 10M). With duckdb-engine, a SQL data source
would push these expectations into DuckDB instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activations import warehouse

ID_COLUMN = "customer_id"
EMAIL_COLUMN = "email"
# Loose on purpose: staging already normalizes emails; this catches what slipped through
# (spaces, no domain, two @) before it reaches a destination.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
REQUIRED_CONSENT_COLUMNS = ("consent_email", "consent_sms", "consent_ads")
COUNTS_TABLE = "activation.quality_gate_counts"
_EXAMPLES = 5


@dataclass(frozen=True)
class RowCountPolicy:
    """How far a table's row count may move from its last accepted count."""

    max_drop_share: float  # 0.1: fail below 90% of the last count
    max_growth_share: float  # 1.0: fail above twice the last count
    slack_rows: int  # tolerance on top of the shares, so tiny tables don't fail on a few rows
    min_rows: int = 0  # even without a baseline

    def bounds(self, previous: int | None) -> tuple[int, int | None]:
        """(min, max) rows allowed; max None when there is nothing to compare with."""
        if previous is None:
            return self.min_rows, None
        low = max(self.min_rows, math.floor(previous * (1 - self.max_drop_share)) - self.slack_rows)
        high = math.ceil(previous * (1 + self.max_growth_share)) + self.slack_rows
        return low, high

    def with_overrides(self, overrides: dict[str, Any] | None) -> RowCountPolicy:
        """This policy with the fields a model's `config.meta.quality_gate` sets."""
        known = {k: v for k, v in (overrides or {}).items() if k in self.__dataclass_fields__}
        return replace(self, **known)


# The customer 360 should barely shrink; audiences move with the calendar and campaigns.
CUSTOMERS_POLICY = RowCountPolicy(max_drop_share=0.1, max_growth_share=1.0, slack_rows=10, min_rows=1)
AUDIENCE_POLICY = RowCountPolicy(max_drop_share=0.5, max_growth_share=2.0, slack_rows=10)


@dataclass(frozen=True)
class Gate:
    asset: str  # the asset's user string, e.g. marts/customers: the baseline's key
    table: str  # schema.table in the warehouse
    policy: RowCountPolicy
    consent_columns: tuple[str, ...] = REQUIRED_CONSENT_COLUMNS


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, in words (no personal data: counts, and ids only)."""

    expectation: str
    column: str | None
    success: bool
    detail: str

    def __str__(self) -> str:
        target = f"({self.column})" if self.column else ""
        return f"{self.expectation}{target}: {self.detail}"


@dataclass
class GateResult:
    row_count: int
    previous_row_count: int | None
    bounds: tuple[int, int | None]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        if self.passed:
            return f"all {len(self.outcomes)} expectations passed ({self.row_count:,} rows)"
        return "failed: " + "; ".join(str(o) for o in self.failed)


def validate(gate: Gate, path: Path, accept_row_count: bool = False) -> GateResult:
    """Run the gate's suite on the warehouse at `path` (read-only); does not record anything."""
    with warehouse.connect(path, read_only=True) as con:
        schema, table = gate.table.split(".", 1)
        present = {c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, table]).fetchall()}
        previous = previous_row_count(con, gate.asset)
        wanted = [ID_COLUMN, EMAIL_COLUMN, *gate.consent_columns]
        columns = [c for c in wanted if c in present]
        # A missing table reads as an empty one with no columns: its column expectations fail.
        sql = f"select {', '.join(columns) or '1 as _'} from {gate.table}" if present else "select 1 as _ where false"
        frame = con.execute(sql).df()
    bounds = (gate.policy.min_rows, None) if accept_row_count else gate.policy.bounds(previous)
    outcomes = _run_suite(gate, frame, present, bounds)
    return GateResult(row_count=len(frame), previous_row_count=previous, bounds=bounds, outcomes=outcomes)


def _expectations(gate: Gate, present: set[str], bounds: tuple[int, int | None]) -> list[Any]:
    import great_expectations.expectations as gxe

    found = [gxe.ExpectColumnToExist(column=c) for c in (ID_COLUMN, *gate.consent_columns)]
    if ID_COLUMN in present:
        found += [gxe.ExpectColumnValuesToNotBeNull(column=ID_COLUMN), gxe.ExpectColumnValuesToBeUnique(column=ID_COLUMN)]
    if EMAIL_COLUMN in present:  # nulls are not checked: a person may have no email
        found.append(gxe.ExpectColumnValuesToMatchRegex(column=EMAIL_COLUMN, regex=EMAIL_PATTERN))
    found += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in gate.consent_columns if c in present]
    found.append(gxe.ExpectTableRowCountToBeBetween(min_value=bounds[0], max_value=bounds[1]))
    return found


def _run_suite(gate: Gate, frame: Any, present: set[str], bounds: tuple[int, int | None]) -> list[Outcome]:
    # Imported here: great_expectations takes ~4-5 s to import, and loading definitions must stay fast.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    name = gate.asset.replace("/", "__")
    batch = (context.data_sources.add_pandas("warehouse").add_dataframe_asset(name)
             .add_batch_definition_whole_dataframe("whole_table").get_batch(batch_parameters={"dataframe": frame}))
    suite = gx.ExpectationSuite(name=f"{name}__gate", expectations=_expectations(gate, present, bounds))
    results = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": _EXAMPLES})
    return [_outcome(r, bounds) for r in results.results]


def _outcome(result: Any, bounds: tuple[int, int | None]) -> Outcome:
    config = result.expectation_config
    kind, column = config.type, config.kwargs.get("column")
    details = result.result or {}
    raised = (result.exception_info or {}).get("exception_message") if not result.success else None
    if raised:
        detail = f"could not be evaluated: {raised}"
    elif kind == "expect_table_row_count_to_be_between":
        high = "no upper bound" if bounds[1] is None else f"at most {bounds[1]:,}"
        detail = f"{details.get('observed_value', 0):,} rows, expected at least {bounds[0]:,} and {high}"
    elif kind == "expect_column_to_exist":
        detail = "present" if result.success else "missing"
    else:
        count = details.get("unexpected_count") or 0
        detail = f"{count:,} unexpected value(s) ({details.get('unexpected_percent') or 0:.2f}%)"
        if count and column == ID_COLUMN and kind == "expect_column_values_to_be_unique":
            examples = sorted({str(v) for v in details.get("partial_unexpected_list") or []})[:_EXAMPLES]
            detail += f", e.g. {', '.join(examples)}"
    return Outcome(expectation=kind, column=column, success=bool(result.success), detail=detail)


def previous_row_count(con: Any, asset: str) -> int | None:
    """The row count of the asset's last passed gate, or None."""
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_schema = 'activation' and table_name = 'quality_gate_counts'").fetchone()[0]
    if not exists:
        return None
    row = con.execute(f"select row_count from {COUNTS_TABLE} where asset = ? and passed "
                      "order by checked_at desc limit 1", [asset]).fetchone()
    return int(row[0]) if row else None


def record(path: Path, gate: Gate, result: GateResult, run_id: str) -> None:
    """Remember this evaluation; a passed one becomes the next baseline."""
    with warehouse.connect(path) as con:
        con.execute("create schema if not exists activation")
        con.execute(f"create table if not exists {COUNTS_TABLE} (asset varchar not null, row_count bigint not null, "
                    "passed boolean not null, run_id varchar, checked_at timestamp not null)")
        con.execute(f"insert into {COUNTS_TABLE} values (?, ?, ?, ?, ?)",
                    [gate.asset, result.row_count, result.passed, run_id, datetime.now(UTC).replace(tzinfo=None)])
