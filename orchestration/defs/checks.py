"""Quality gates as blocking asset checks: one Great Expectations suite on `marts/customers` and
one on every audience (orchestration.lib.quality_gates says what each checks).

How they block: each gate is a blocking asset check. A failed gate fails its step (ERROR
severity), and Dagster does not start the steps of assets downstream of the checked asset in
that run: the customers gate stops the audiences step (dbt.py builds audiences separately for
this), an audience's gate stops whatever reads that audience (its syncs). The check's
description and metadata name every failed expectation; the run-failure sensor copies them
into `activation.alerts`.

Gates carry no automation condition on purpose: checks without one ride along with their
asset in every run that materializes it, including declarative-automation runs.

To accept a legitimate jump in row count (a new source, a deleted segment), run the gate
with config `accept_row_count: true`: the row-count bound is skipped once and, if everything
else passes, the new count becomes the baseline.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from orchestration.defs.dbt import DBT_ASSETS, MANIFEST, audience_keys, customers_key
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib import quality_gates
from orchestration.lib.quality_gates import AUDIENCE_POLICY, CUSTOMERS_POLICY, REQUIRED_CONSENT_COLUMNS, Gate

GATE_CHECK = "quality_gate"


class QualityGateConfig(dg.Config):
    accept_row_count: bool = Field(
        default=False, description="Skip the row-count bound once and make this run's count the new baseline.")


def _specs_by_key() -> dict[dg.AssetKey, dg.AssetSpec]:
    return {spec.key: spec for assets in DBT_ASSETS for spec in assets.specs}


def _model_meta(spec: dg.AssetSpec) -> dict[str, Any]:
    node = MANIFEST["nodes"].get(spec.metadata.get("dagster_dbt/unique_id"), {})
    return node.get("config", {}).get("meta", {}) or {}


def gate_for(spec: dg.AssetSpec) -> Gate:
    """The gate of a dbt model: its relation, its consent columns, its row-count policy
    (a model may tune it in YAML: `config.meta.quality_gate: {max_drop_share: 0.8}`)."""
    relation = spec.metadata["dagster/table_name"].split(".")[-2:]  # database.schema.table
    schema = spec.metadata.get("dagster/column_schema")
    documented = [c.name for c in schema.columns] if schema else []
    consent = (*REQUIRED_CONSENT_COLUMNS, *(c for c in documented if c.startswith("consent_")
                                            and c not in REQUIRED_CONSENT_COLUMNS))
    base = CUSTOMERS_POLICY if spec.key == customers_key() else AUDIENCE_POLICY
    return Gate(asset=spec.key.to_user_string(), table=".".join(relation),
                policy=base.with_overrides(_model_meta(spec).get("quality_gate")), consent_columns=consent)


def gated_keys() -> list[dg.AssetKey]:
    return [customers_key(), *audience_keys()]


def quality_gate_check(key: dg.AssetKey, gate: Gate) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key,
        name=GATE_CHECK,
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=(f"Great Expectations: {quality_gates.ID_COLUMN} unique and not null, email format, "
                     f"{', '.join(gate.consent_columns)} present and not null, row count within bounds of the "
                     "last passed run. Blocks everything downstream when it fails."),
    )
    def _gate(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
              config: QualityGateConfig) -> dg.AssetCheckResult:
        result = quality_gates.validate(gate, warehouse.file(), accept_row_count=config.accept_row_count)
        quality_gates.record(warehouse.file(), gate, result, context.run.run_id)
        message = f"{gate.asset} quality gate {result.summary()}"
        if result.passed:
            context.log.info(message)
        else:
            context.log.error(message)
        low, high = result.bounds
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.summary(),
            metadata={
                "dagster/row_count": result.row_count,
                "previous_row_count": result.previous_row_count,
                "row_count_bounds": f"{low:,} to {'unbounded' if high is None else f'{high:,}'}",
                "failed_expectations": "\n".join(str(o) for o in result.failed) or "none",
                "expectations": dg.MetadataValue.md(
                    "| expectation | column | passed | detail |\n|---|---|---|---|\n"
                    + "\n".join(f"| {o.expectation} | {o.column or ''} | {'yes' if o.success else '**no**'} | {o.detail} |"
                                for o in result.outcomes)),
            },
        )

    return _gate


def quality_gate_checks() -> list[dg.AssetChecksDefinition]:
    specs = _specs_by_key()
    return [quality_gate_check(key, gate_for(specs[key])) for key in gated_keys()]


def definitions() -> dg.Definitions:
    return dg.Definitions(asset_checks=quality_gate_checks())
