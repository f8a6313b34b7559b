"""Probabilistic matching as an asset, between the staging and the warehouse dbt steps.

Its key, `matching/links`, is the key the dbt source `matching.links` maps to (dbt.py's
translator), so the identity models that read the links wait for it, and it waits for the
staged records it reads and the identity graph's nodes (which identifiers are shared).

If scoring fails, the links stay as the last run left them and the step says so with a failed
`matching_ran` check (not blocking; severity ERROR, so the failed-check sensor records an alert):
the identity graph and everything after it still build, from the rules and the links already decided.
"""


from datetime import UTC, datetime

import dagster as dg

from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse

LINKS = dg.AssetKey(["matching", "links"])
# The staged records it scores, and the nodes whose shared identifiers it sets aside.
READS = [dg.AssetKey(["staging", "stg_crm__contacts"]), dg.AssetKey(["staging", "stg_shop__customers"]),
         dg.AssetKey(["intermediate", "int_identity__nodes"])]


RAN = "matching_ran"


class MatchingConfig(dg.Config):
    rescore_all: bool = False


@dg.asset(key=LINKS, deps=READS, group_name="matching", pool=WAREHOUSE_POOL,
          automation_condition=dg.AutomationCondition.eager(),
          check_specs=[dg.AssetCheckSpec(RAN, asset=LINKS, description="the matching step scored the new records")],
          description="Pairs of person records probabilistic matching scored (merged, in review, decided); "
                      "only records new or changed since the last run are scored (activations/identity/matching.py).")
def matching_links(context: dg.AssetExecutionContext, warehouse: Warehouse, config: MatchingConfig) -> dg.MaterializeResult:
    """Score new and changed person records and write the links the identity models read."""
    from activations.identity.matching import run_matching  # Splink: imported when the step runs, not at load

    try:
        with warehouse.connect() as con:
            result = run_matching(con, now=datetime.now(UTC).replace(tzinfo=None), rescore_all=config.rescore_all)
    except Exception as exc:  # noqa: BLE001 - the rest of the build goes on with the links of the last run
        context.log.error(f"matching failed, the links of the last run stay: {type(exc).__name__}: {exc}")
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name=RAN, passed=False, metadata={"error": f"{type(exc).__name__}: {exc}"[:2000]})])
    context.log.info(str(result))
    return dg.MaterializeResult(
        metadata={
            "records": result.records, "new_records": result.new_records, "pairs_scored": result.pairs_scored,
            "links_written": result.links_written, "seconds": round(result.seconds, 2),
            **{f"links_{status}": n for status, n in sorted(result.statuses.items())},
        },
        check_results=[dg.AssetCheckResult(check_name=RAN, passed=True)])


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[matching_links])
