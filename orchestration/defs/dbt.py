"""The dbt project as assets: every model a Dagster asset, every dbt test an asset check.

Three `dbt build` steps instead of one: seeds, staging and the identity graph's nodes first,
so probabilistic matching (matching.py, the `matching/links` asset) reads the staged records
and this build's shared identifiers before the rest of the identity models read its links; then the rest of the warehouse (intermediate, marts); then the audiences, so
a quality gate can stand between them. The blocking gate on `marts/customers` (checks.py)
runs after the warehouse step and stops the audiences.

The manifest is prepared outside this module (`dbt parse`, see the Makefile; `dagster dev`
re-parses through `prepare_if_dev`): importing it never runs dbt, so loading definitions
stays fast and never touches the warehouse.
"""

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from activations import settings
from activations.build import BEFORE_MATCHING, WITHOUT_UNIT_TESTS, dbt_executable, dbt_vars
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse
from orchestration.lib.clock import run_as_of

DBT_PROJECT = DbtProject(project_dir=settings.dbt_project_dir(), profiles_dir=settings.dbt_project_dir())
DBT_PROJECT.prepare_if_dev()
if not DBT_PROJECT.manifest_path.exists():
    raise FileNotFoundError(
        f"{DBT_PROJECT.manifest_path} is missing: prepare the dbt manifest first "
        f"(`dbt parse --project-dir dbt_project --profiles-dir dbt_project`, done by the Makefile)"
    )

MANIFEST: dict[str, Any] = json.loads(DBT_PROJECT.manifest_path.read_text())
# What reads the customer 360 to pick people (or their conversions): built after the customers gate passed.
AUDIENCES = "path:models/audiences path:models/triggers path:models/conversions path:models/catalog"


def dbt_build_args(as_of: datetime, full_refresh: bool = False) -> list[str]:
    """The `dbt build` arguments of a Dagster step: `as_of` pinned, so every model agrees on "now".

    Project, profiles and the selection of the step's assets are added by DbtCliResource.
    """
    args = ["build", "--vars", json.dumps(dbt_vars(as_of)), *WITHOUT_UNIT_TESTS]
    if full_refresh:
        args.append("--full-refresh")
    return args


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


class AttivaDbtTranslator(DagsterDbtTranslator):
    """Keys are `<layer>/<relation>` (sources `raw/<table>`, as ingestion produces them), groups
    are layers, and models follow their upstream eagerly when it changes outside a full run."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # Not built by dbt: ingestion (ingest.py) materializes these keys.
            return spec.replace_attributes(key=dg.AssetKey([props["source_name"], props.get("identifier") or props["name"]]))
        layer = props["fqn"][1] if props["resource_type"] == "model" and len(props["fqn"]) > 2 else "reference"
        return spec.replace_attributes(
            key=dg.AssetKey([layer, props.get("alias") or props["name"]]),
            group_name=layer,
            # Runs that build a model's parents too (sensor, schedule) don't trigger it again:
            # eager() ignores parent updates made by runs that also targeted the model.
            automation_condition=dg.AutomationCondition.eager() if props["resource_type"] == "model" else None,
        )


TRANSLATOR = AttivaDbtTranslator(
    # Tests on raw sources become checks on the raw/<table> assets, next to ingestion's own.
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=True)
)
# The staging step reads every raw table and runs their tests; the warehouse step must not own them too.
AFTER_STAGING_TRANSLATOR = AttivaDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=False)
)


def _dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse,
               config: DbtBuildConfig) -> Iterator[Any]:
    as_of = run_as_of(context)
    args = dbt_build_args(as_of, full_refresh=config.full_refresh)
    context.log.info(f"dbt {' '.join(args)} on {warehouse.file()}")
    with warehouse.dbt_environment():  # the subprocess starts inside cli()
        invocation = dbt.cli(args, context=context, target_path=warehouse.dbt_target_path())
    yield from invocation.stream()


@dbt_assets(manifest=MANIFEST, project=DBT_PROJECT, select=BEFORE_MATCHING,
            dagster_dbt_translator=TRANSLATOR, name="dbt_staging", pool=WAREHOUSE_POOL)
def dbt_staging(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse,
                config: DbtBuildConfig):
    """Seeds, staging and the identity graph's nodes, with their tests: what probabilistic matching reads."""
    yield from _dbt_build(context, dbt, warehouse, config)


@dbt_assets(manifest=MANIFEST, project=DBT_PROJECT, exclude=f"{AUDIENCES} {BEFORE_MATCHING}",
            dagster_dbt_translator=AFTER_STAGING_TRANSLATOR, name="dbt_warehouse", pool=WAREHOUSE_POOL)
def dbt_warehouse(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse,
                  config: DbtBuildConfig):
    """Intermediate (identity graph, after matching) and marts, with their tests."""
    yield from _dbt_build(context, dbt, warehouse, config)


@dbt_assets(manifest=MANIFEST, project=DBT_PROJECT, select=AUDIENCES,
            dagster_dbt_translator=TRANSLATOR, name="dbt_audiences", pool=WAREHOUSE_POOL)
def dbt_audiences(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse,
                  config: DbtBuildConfig):
    """The audiences (aud_*), triggers (trg_*), conversions (conv_*) and the product catalog (catalog_*), with
    their tests; runs only once the customers gate passed."""
    yield from _dbt_build(context, dbt, warehouse, config)


DBT_ASSETS = [dbt_staging, dbt_warehouse, dbt_audiences]
DBT_OPS = ("dbt_staging", "dbt_warehouse", "dbt_audiences")


def dbt_resource() -> DbtCliResource:
    # The dbt next to this Python (the venv's), as the CLI does: `dagster dev` may run without the venv on PATH.
    return DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=dbt_executable())


def audience_keys() -> list[dg.AssetKey]:
    """Every audience model's asset key, from the manifest."""
    return sorted((k for k in dbt_audiences.keys if k.path[0] == "audiences"), key=lambda k: k.to_user_string())


def customers_key() -> dg.AssetKey:
    return dg.AssetKey(["marts", "customers"])


def definitions() -> dg.Definitions:
    """The dbt steps' assets, and the dbt CLI they run."""
    return dg.Definitions(assets=DBT_ASSETS, resources={"dbt": dbt_resource()})
