"""Sensors and the schedule: new landing files request one run per file set, a failed run
leaves an alert in the warehouse, and the daily schedule fully refreshes everything."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.xdist_group("orchestration")


def age(where: Path, seconds: float = 3600) -> None:
    """Make a file, or every file of a folder, look written `seconds` ago (the sensor waits for files to settle)."""
    then = time.time() - seconds
    for path in [where] if where.is_file() else where.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def tick(sensor, landing: Path, cursor: str | None, warehouse: Path | None = None):
    import dagster as dg

    from orchestration.defs.resources import Landing, Warehouse

    warehouse = warehouse or landing.parent / "no-warehouse.duckdb"
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": Landing(path=str(landing)),
                                                                 "warehouse": Warehouse(path=str(warehouse))})
    return sensor(context)


def test_the_landing_sensor_requests_one_run_per_new_file_set(defs, handcrafted_landing, tmp_path):
    import dagster as dg

    from orchestration.defs.sensors import landing_files

    landing = tmp_path / "landing"
    shutil.copytree(handcrafted_landing, landing)
    age(landing)

    first = tick(landing_files, landing, cursor=None)
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags["attiva/landing_files"] == "10"  # the handcrafted landing's files
    again = tick(landing_files, landing, cursor=None)
    assert again.run_requests[0].run_key == first.run_requests[0].run_key  # same files, same run key

    nothing = tick(landing_files, landing, cursor=first.cursor)
    assert not nothing.run_requests and "nothing new" in nothing.skip_reason.skip_message

    # A file still being written waits; a file in no source folder never triggers a run.
    new = landing / "shop/orders/orders_2026-11-21.csv"
    new.write_text((landing / "shop/orders/orders.csv").read_text().splitlines()[0] + "\n")
    (landing / "misc").mkdir()
    (landing / "misc/readme.txt").write_text("not a source")
    age(landing / "misc/readme.txt")
    settling = tick(landing_files, landing, cursor=first.cursor)
    assert not settling.run_requests and "1 still being written" in settling.skip_reason.skip_message

    age(new)
    second = tick(landing_files, landing, cursor=settling.cursor)
    assert len(second.run_requests) == 1 and second.run_requests[0].tags["attiva/landing_files"] == "1"
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert not tick(landing_files, landing, cursor=second.cursor).run_requests

    # A changed file is new again.
    with new.open("a") as stream:
        stream.write("O99,S1,,,2026-11-21 10:00:00,completed,10.0,web,,,,\n")
    age(new, seconds=60)
    changed = tick(landing_files, landing, cursor=second.cursor)
    assert len(changed.run_requests) == 1

    # Its runs refresh ingestion and everything downstream, gates included.
    job = defs.resolve_job_def(landing_files.job_name)
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"raw/shop_orders", "marts/customers", "audiences/aud_champions"} <= keys
    assert "predictions/customer_propensity" not in keys  # retrained weekly, not at every file
    assert dg.AssetCheckKey(dg.AssetKey(["marts", "customers"]), "quality_gate") in job.asset_layer.asset_graph.asset_check_keys


def test_files_the_warehouse_already_loaded_start_no_run(defs, handcrafted_landing, tmp_path):
    # `make dev` right after `make demo`: the sensor has no cursor yet, but ingestion loaded every file.
    from activations.ingest import load_landing
    from orchestration.defs.sensors import landing_files

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    shutil.copytree(handcrafted_landing, landing)
    age(landing)
    load_landing(landing, warehouse)
    first = tick(landing_files, landing, cursor=None, warehouse=warehouse)
    assert not first.run_requests and "nothing new" in first.skip_reason.skip_message
    assert tick(landing_files, landing, cursor=None).run_requests  # without the ledger: all of them

    new = landing / "shop/orders/orders_2026-11-21.csv"
    new.write_text((landing / "shop/orders/orders.csv").read_text())
    age(new)
    second = tick(landing_files, landing, cursor=first.cursor, warehouse=warehouse)
    assert [r.tags["attiva/landing_files"] for r in second.run_requests] == ["1"]


def test_the_landing_sensor_skips_a_missing_folder(defs, tmp_path):
    from orchestration.defs.sensors import landing_files

    result = tick(landing_files, tmp_path / "nowhere", cursor=None)
    assert "does not exist" in result.skip_message


def test_a_failed_run_leaves_an_alert_naming_the_failed_asset(defs, blocked_by_customers_gate, tmp_path):
    import dagster as dg

    from orchestration.defs.resources import Warehouse
    from orchestration.defs.sensors import record_run_alerts, run_failure_alerts

    blocked = blocked_by_customers_gate
    context = dg.build_run_status_sensor_context(
        sensor_name=run_failure_alerts.name, dagster_instance=blocked.instance, dagster_run=blocked.result.dagster_run,
        dagster_event=blocked.result.get_run_failure_event()).for_run_failure()
    request = run_failure_alerts(context)
    assert request.run_key == f"alerts-{blocked.result.run_id}"
    [alert] = request.run_config["ops"]["record_alerts"]["config"]["alerts"]
    assert alert["asset_key"] == "marts/customers" and alert["check_name"] == "quality_gate"
    assert "expect_column_values_to_be_unique(customer_id)" in alert["error"]

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(blocked.warehouse, warehouse)
    for _ in range(2):  # recorded once, however often the sensor sees the run
        record_run_alerts.execute_in_process(run_config=request.run_config,
                                             resources={"warehouse": Warehouse(path=str(warehouse))})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        recorded = con.execute("select run_id, job_name, asset_key, step_key, check_name, error, failed_at "
                               "from activation.alerts").fetchall()
    assert len(recorded) == 1
    run_id, job_name, asset_key, step_key, check_name, error, failed_at = recorded[0]
    assert (run_id, asset_key, step_key, check_name) == (
        blocked.result.run_id, "marts/customers", "marts__customers_quality_gate", "quality_gate")
    assert job_name and "expect_column_values_to_be_unique(customer_id)" in error
    assert abs((datetime.now(UTC).replace(tzinfo=None) - failed_at).total_seconds()) < 3600


def test_a_failed_step_without_a_failed_check_names_the_assets_it_did_not_build(tmp_path):
    import dagster as dg

    from orchestration.lib.alerts import alerts_for_run

    @dg.asset
    def upstream_table() -> None:
        raise RuntimeError("lock held by another process")

    @dg.asset(deps=[upstream_table])
    def downstream_table() -> None:
        pass

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([upstream_table, downstream_table], instance=instance, raise_on_error=False)
    [alert] = alerts_for_run(instance, result.dagster_run)
    assert alert.asset_key == "upstream_table" and alert.step_key == "upstream_table" and alert.check_name is None
    assert alert.error.startswith("RuntimeError: lock held by another process")  # the root cause first


def test_an_alert_run_that_fails_does_not_request_another(defs):
    import dagster as dg

    from orchestration.defs.resources import Warehouse
    from orchestration.defs.sensors import record_alerts, record_run_alerts, run_failure_alerts

    # The same job without its ~5 minutes of retries.
    @dg.job(name=record_run_alerts.name)
    def record_run_alerts_once():
        record_alerts.with_retry_policy(dg.RetryPolicy(max_retries=0))()

    instance = dg.DagsterInstance.ephemeral()
    result = record_run_alerts_once.execute_in_process(
        run_config={"ops": {"record_alerts": {"config": {"alerts": []}}}}, instance=instance, raise_on_error=False,
        resources={"warehouse": Warehouse(path="/proc/no-such-dir/warehouse.duckdb")})
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name=run_failure_alerts.name, dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event()).for_run_failure()
    assert isinstance(run_failure_alerts(context), dg.SkipReason)


def test_the_daily_schedule_fully_refreshes_everything(defs):
    import dagster as dg

    from orchestration.defs.schedules import daily_schedule

    assert daily_schedule.cron_schedule == "0 5 * * *" and daily_schedule.execution_timezone == "Europe/Rome"
    job = defs.resolve_job_def(daily_schedule.job_name)
    graph = defs.resolve_asset_graph()
    # everything but the predictive models, which retrain weekly (clv.py, propensity.py)
    predictions = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "predictions"}
    assert {dg.AssetKey(["predictions", "customer_clv"]), dg.AssetKey(["predictions", "customer_propensity"])} <= predictions
    assert set(job.asset_layer.selected_asset_keys) == set(graph.get_all_asset_keys()) - predictions
    assert {n.name for n in job.graph.nodes} >= {"ingest_landing", "dbt_staging", "matching__links", "dbt_warehouse",
                                                 "dbt_audiences", "marts__customers_quality_gate"}
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 5, tzinfo=UTC))
    [request] = daily_schedule.evaluate_tick(context).run_requests
    assert not request.run_config  # the job's own config applies: dbt with --full-refresh
    assert job.run_config == {"ops": {op: {"config": {"full_refresh": True}} for op in ("dbt_staging", "dbt_warehouse",
                                                                                     "dbt_audiences")}}
    assert job.tags.get("attiva/trigger") == "schedule"


def test_a_sync_follows_its_audience_only_once_every_blocking_check_passed(defs):
    import dagster as dg

    instance = dg.DagsterInstance.ephemeral()
    sync, audience = dg.AssetKey(["syncs", "aud_champions__hubspot"]), dg.AssetKey(["audiences", "aud_champions"])
    selection = dg.AssetSelection.assets(sync)
    checks = [k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key == audience]
    assert "quality_gate" in {c.name for c in checks}

    def audience_built(gate_passes: bool):
        instance.report_runless_asset_event(dg.AssetMaterialization(audience))
        for check in checks:
            passed = gate_passes or check.name != "quality_gate"
            instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                asset_key=audience, check_name=check.name, passed=passed, severity=dg.AssetCheckSeverity.ERROR))

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert tick.total_requested == 0  # nothing happened to the audience yet
    audience_built(gate_passes=False)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=tick.cursor)
    assert tick.total_requested == 0  # a failed gate holds the sync back
    audience_built(gate_passes=True)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=tick.cursor)
    assert tick.total_requested == 1
