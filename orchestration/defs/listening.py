"""Web listening's step as assets, between the staging and the warehouse dbt steps.

Its keys, `listening/mention_scores`, `listening/mention_brands` and `listening/mention_topics`, are the keys
the dbt sources of schema `listening` map to (dbt.py's translator), so the listening marts wait for them, and
they wait for the deduplicated mentions they read (staging/stg_listening__mentions).

If the step fails, the tables stay as the last run left them and it says so with a failed `listening_ran`
check (not blocking; severity ERROR, like matching): the marts still build from the last scores.
"""

import dagster as dg

from orchestration.defs.resources import WAREHOUSE_POOL, Warehouse

SCORES = dg.AssetKey(["listening", "mention_scores"])
KEYS = (SCORES, dg.AssetKey(["listening", "mention_brands"]), dg.AssetKey(["listening", "mention_topics"]))
READS = [dg.AssetKey(["staging", "stg_listening__mentions"])]
RAN = "listening_ran"


@dg.multi_asset(
    specs=[dg.AssetSpec(key, deps=READS, group_name="listening", kinds={"python", "duckdb"},
                        automation_condition=dg.AutomationCondition.eager(),
                        description=description) for key, description in zip(KEYS, (
        "Language and sentiment of each mention, scored once per text (activations/listening/scoring.py).",
        "The brands of listening.yml each mention names.", "The topics of listening.yml each mention is in."),
        strict=True)],
    check_specs=[dg.AssetCheckSpec(RAN, asset=SCORES, description="the listening step scored the new mentions")],
    pool=WAREHOUSE_POOL, can_subset=False, name="listening_step")
def listening_step(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Score new and changed mentions; match brands and topics of all of them (listening.yml)."""
    from activations.listening.config import load_listening
    from activations.listening.scoring import score_mentions

    try:
        listening = load_listening()
        with warehouse.connect() as con:
            result = score_mentions(con, listening)
    except Exception as exc:  # noqa: BLE001 - the marts still build, from the last run's scores
        context.log.error(f"listening failed, the scores of the last run stay: {type(exc).__name__}: {exc}")
        for key in KEYS:
            yield dg.MaterializeResult(asset_key=key)
        yield dg.AssetCheckResult(check_name=RAN, asset_key=SCORES, passed=False,
                                  metadata={"error": f"{type(exc).__name__}: {exc}"[:2000]})
        return
    context.log.info(str(result))
    yield dg.MaterializeResult(asset_key=SCORES, metadata={"mentions": result.mentions, "scored": result.scored,
                                                           "seconds": round(result.seconds, 2)})
    yield dg.MaterializeResult(asset_key=KEYS[1], metadata={"matches": result.brand_mentions})
    yield dg.MaterializeResult(asset_key=KEYS[2], metadata={"matches": result.topic_mentions})
    yield dg.AssetCheckResult(check_name=RAN, asset_key=SCORES, passed=True)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[listening_step])
