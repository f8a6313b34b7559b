"""The personalization API's serving store (`serving/store`): a snapshot of the marts and audiences
that `attiva serve` reads, rebuilt after them and published atomically (activations/serve/store.py).

It reads the warehouse read-only, but DuckDB refuses a reader while another process writes the
file, so it is in the `warehouse` pool like every warehouse step. Its group is `syncs`: like a sync,
it carries the warehouse's audiences out to where they are used.
"""

import dagster as dg

from activations import settings
from activations.serve.store import build_serving_snapshot
from orchestration.defs.dbt import audience_keys, customers_key
from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse

SERVING_KEY = dg.AssetKey(["serving", "store"])
MARTS = [customers_key(), *(dg.AssetKey(["marts", m]) for m in ("customer_identifiers", "customer_recommendations",
                                                                   "products"))]


@dg.asset(
    key=SERVING_KEY,
    deps=[*MARTS, *audience_keys()],
    group_name="syncs",
    kinds={"sqlite"},
    pool=WAREHOUSE_POOL,
    description="Read-optimized snapshot for `attiva serve`: identifiers -> customer, public traits, audience "
                "memberships, recommendations, promotion on the favourite. Swapped atomically; the API follows it.",
    automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed(),
)
def serving_store(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    result = build_serving_snapshot(warehouse.file(), settings.serving_dir())
    context.log.info(f"serving snapshot {result.version}: {result.customers:,} customers in {result.seconds:.1f} s")
    return dg.MaterializeResult(metadata={
        "snapshot_path": dg.MetadataValue.path(str(result.path)),
        "version": result.version,
        "customers": result.customers,
        "identifiers": result.identifiers,
        "audiences": result.audiences,
        "build_seconds": round(result.seconds, 2),
    })


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[serving_store])
