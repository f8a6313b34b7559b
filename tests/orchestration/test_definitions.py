"""The definitions: they load fast without touching the warehouse, lineage runs from landing
files to audiences, every warehouse step is in the warehouse pool, and dbt gets `as_of`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("orchestration")

ROOT = Path(__file__).resolve().parents[2]
LOAD = """
import json, sys, time
started = time.monotonic()
import dagster as dg
from orchestration.definitions import defs
dg.Definitions.validate_loadable(defs)
repo = defs.get_repository_def()
print(json.dumps({"seconds": time.monotonic() - started, "jobs": sorted(j.name for j in repo.get_all_jobs()),
                  "great_expectations_imported": "great_expectations" in sys.modules,
                  "scipy_imported": "scipy" in sys.modules}))
"""


def test_definitions_load_fast_and_never_touch_the_warehouse(dbt_manifest, tmp_path):
    nowhere = tmp_path / "nowhere"
    env = {**os.environ, "ATTIVA_WAREHOUSE": str(nowhere / "warehouse.duckdb"), "ATTIVA_LANDING": str(nowhere / "landing")}
    env.pop("DAGSTER_IS_DEV_CLI", None)  # `dagster dev` would re-parse dbt; a plain load must not
    proc = subprocess.run([sys.executable, "-c", LOAD], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not nowhere.exists(), "loading the definitions created the warehouse folder"
    assert not loaded["great_expectations_imported"], "great_expectations must be imported inside the gates"
    assert not loaded["scipy_imported"], "scipy must be imported inside the customer_clv step"
    assert {"landing_refresh", "daily_full_refresh", "record_run_alerts"} <= set(loaded["jobs"])
    assert loaded["seconds"] < 15, f"definitions took {loaded['seconds']:.1f}s to load"
    print(f"definitions load in {loaded['seconds']:.1f}s")


def test_lineage_runs_from_landing_files_to_audiences(defs):
    import dagster as dg

    from activations.ingest.contract import SOURCES

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    # Every dbt source is an asset ingestion materializes: nothing upstream is external.
    assert all(graph.get(k).is_materializable for k in graph.get_all_asset_keys())
    assert {f"raw/{s.name}" for s in SOURCES} | {"raw/landing_files", "raw/quarantine"} <= keys
    customers = dg.AssetKey(["marts", "customers"])
    assert {raw_key for raw_key in graph.get_all_asset_keys() if raw_key.path[0] == "raw"
            and raw_key.path[1] in {"crm_contacts", "shop_customers", "consent"}} <= (
        dg.AssetSelection.assets(customers).upstream().resolve(graph))
    audiences = [k for k in graph.get_all_asset_keys() if k.path[0] == "audiences"]
    assert len(audiences) >= 8 and all(k.path[1].startswith("aud_") for k in audiences)
    assert all(customers in dg.AssetSelection.assets(k).upstream().resolve(graph) for k in audiences)


def test_groups_are_layers_and_gates_block(defs):
    import dagster as dg

    graph = defs.resolve_asset_graph()
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups["raw/crm_contacts"] == "raw"
    assert groups["staging/stg_crm__contacts"] == "staging"
    assert groups["intermediate/int_identity__edges"] == "intermediate"
    assert groups["marts/customers"] == "marts"
    assert groups["audiences/aud_champions"] == "audiences"
    assert groups["matching/links"] == "matching"
    assert set(groups.values()) <= {"raw", "reference", "staging", "matching", "intermediate", "marts", "audiences", "syncs",
                                    "triggers", "messages", "feedback", "activation", "measurement", "report",
                                    "predictions", "conversions", "catalog", "listening"}
    # web listening's step sits between the deduplicated mentions and the listening marts
    weekly = dg.AssetKey(["marts", "listening_brand_weekly"])
    assert dg.AssetKey(["listening", "mention_scores"]) in dg.AssetSelection.assets(weekly).upstream().resolve(graph)
    assert dg.AssetKey(["staging", "stg_listening__mentions"]) in dg.AssetSelection.assets(
        dg.AssetKey(["listening", "mention_scores"])).upstream().resolve(graph)

    gated = {k.asset_key.to_user_string(): graph.get(k) for k in graph.asset_check_keys if k.name == "quality_gate"}
    audiences = {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] == "audiences"}
    assert set(gated) == {"marts/customers", *audiences}
    checks = {spec.key: spec for c in defs.asset_checks for spec in c.check_specs}
    assert all(checks[dg.AssetCheckKey(dg.AssetKey.from_user_string(a), "quality_gate")].blocking for a in gated)
    # dbt tests are checks too, on models and on raw sources
    assert dg.AssetCheckKey(dg.AssetKey(["marts", "customers"]), "unique_customers_customer_id") in graph.asset_check_keys
    assert any(k.asset_key.path[0] == "raw" for k in graph.asset_check_keys if k.name.startswith("source_"))


def test_every_warehouse_step_is_in_the_warehouse_pool_and_runs_in_process(defs):
    import dagster as dg

    assert defs.executor is dg.in_process_executor
    for assets in defs.assets:
        assert assets.op.pool == "warehouse", assets.op.name
    for check in defs.asset_checks:
        assert check.op.pool == "warehouse", check.op.name
    alerts_job = defs.resolve_job_def("record_run_alerts")
    assert {n.definition.pool for n in alerts_job.graph.nodes} == {"warehouse"}
    # an alert waits out a write lock held outside Dagster (the CLI, a notebook)
    assert all(n.definition.retry_policy.max_retries >= 3 for n in alerts_job.graph.nodes)


def test_models_follow_upstream_changes_and_gates_ride_along(defs):
    graph = defs.resolve_asset_graph()
    customers = graph.get(next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "marts/customers"))
    assert customers.automation_condition is not None and customers.automation_condition.get_label() == "eager"
    ingested = graph.get(next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "raw/events"))
    assert ingested.automation_condition is None  # the landing sensor starts ingestion
    gate = graph.get(next(k for k in graph.asset_check_keys if k.name == "quality_gate"))
    assert gate.automation_condition is None  # no condition: it runs with its asset in every run


def test_one_sync_asset_per_declared_sync_downstream_of_its_audience(defs):
    import dagster as dg

    graph = defs.resolve_asset_graph()
    syncs = {k.path[1]: graph.get(k) for k in graph.get_all_asset_keys() if k.path[0] == "syncs"}
    assert "aud_champions__hubspot" in syncs and "aud_high_ltv_seed__google" in syncs
    # every destination type of destinations.yml is exercised by some sync
    assert {next(iter(node.kinds)) for node in syncs.values()} == {
        "hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook", "file_export",
        "meta_conversions", "google_conversions", "meta_catalog", "google_merchant"}
    # conversions are a sync's rows too: the sync follows its conversions model
    conversions = syncs["conv_meta_purchases__meta_conversions"]
    assert set(conversions.parent_keys) == {dg.AssetKey(["conversions", "conv_meta_purchases"])}
    # and so is the product catalog: each catalog sync follows catalog_products
    for name in ("catalog_products__meta_catalog", "catalog_products__google_merchant"):
        assert set(syncs[name].parent_keys) == {dg.AssetKey(["catalog", "catalog_products"])}
    hubspot = syncs["aud_champions__hubspot"]
    assert hubspot.group_name == "syncs"
    assert set(hubspot.parent_keys) == {dg.AssetKey(["audiences", "aud_champions"])}
    # a sync follows its audience once that audience's blocking gate passed
    assert [c.get_label() for c in hubspot.automation_condition.operands] == [
        "eager", "all_deps_blocking_checks_passed"]


def test_one_message_asset_per_trigger_after_the_customers_gate(defs):
    import dagster as dg

    graph = defs.resolve_asset_graph()
    messages = {k.path[1]: graph.get(k) for k in graph.get_all_asset_keys() if k.path[0] == "messages"}
    assert {"abandoned_cart", "birthday", "welcome", "lead_nurture", "cross_sell", "favourite_on_promotion",
            "win_back", "browse_abandonment"} <= set(messages)
    cart = messages["abandoned_cart"]
    assert set(cart.parent_keys) == {dg.AssetKey(["triggers", "trg_abandoned_cart"])}
    # triggers are built with the audiences, after the customers gate
    audiences_step = next(a for a in defs.assets if getattr(a, "op", None) and a.op.name == "dbt_audiences")
    assert dg.AssetKey(["triggers", "trg_abandoned_cart"]) in audiences_step.keys
    # due steps go out every 5 minutes without new data
    schedule = defs.resolve_schedule_def("due_messages_every_5_minutes")
    assert schedule.cron_schedule == "*/5 * * * *" and schedule.job_name == "due_messages"


def test_customer_lifetime_value_follows_the_orders_and_retrains_weekly(defs):
    import dagster as dg

    graph = defs.resolve_asset_graph()
    clv = graph.get(dg.AssetKey(["predictions", "customer_clv"]))
    assert clv.parent_keys == {dg.AssetKey(["marts", "orders"])} and graph.get(dg.AssetKey(["marts", "orders"]))
    assert clv.automation_condition is None  # only its schedule retrains it
    [check] = [k for k in graph.asset_check_keys if k.asset_key == clv.key]
    # A refused model stops only itself: the audiences reading its scores still run, and the failed check
    # (severity ERROR) is alerted by a sensor on successful runs.
    assert check.name == "clv_quality" and not graph.get(check).blocking
    assert clv.key in graph.get(dg.AssetKey(["audiences", "aud_valuable_at_risk"])).parent_keys
    assert defs.get_sensor_def("failed_check_alerts")
    schedule = defs.get_schedule_def("weekly_clv_schedule")
    assert schedule.cron_schedule == "0 4 * * 1" and schedule.execution_timezone == "Europe/Rome"
    assert set(defs.resolve_job_def(schedule.job_name).asset_layer.selected_asset_keys) == {clv.key}


def test_dbt_build_args_pin_as_of(dbt_manifest):
    from orchestration.defs.dbt import dbt_build_args

    as_of = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    args = dbt_build_args(as_of)
    assert args[0] == "build" and "--full-refresh" not in args
    assert json.loads(args[args.index("--vars") + 1]) == {"as_of": "2026-03-01 09:30:00"}
    rome = datetime.fromisoformat("2026-03-01T10:30:00+01:00")
    assert dbt_build_args(rome) == args  # any offset, one UTC "now"
    assert dbt_build_args(as_of, full_refresh=True)[-1] == "--full-refresh"
