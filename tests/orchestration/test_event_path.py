"""The event path: the `fresh_events` sensor requests an `event_messages` run for new event files at
once (the collector's files need no settling), one run at a time in the queue; the landing sensor
leaves event files alone to it for a while; and one real run takes a new cart event on a built
warehouse to a message on the SMTP server, having run only the models the event-driven triggers read."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.conftest import HANDCRAFTED_AS_OF

# On the worker that builds the handcrafted warehouse, which the last test runs the event path on.
pytestmark = pytest.mark.xdist_group("handcrafted")


def age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def tick(sensor, landing: Path, cursor: str | None, instance=None):
    import dagster as dg

    from orchestration.defs.resources import Landing, Warehouse

    # no warehouse there: every landing file is new to the landing sensor
    resources = {"landing": Landing(path=str(landing)), "warehouse": Warehouse(path=str(landing.parent / "none.duckdb"))}
    context = dg.build_sensor_context(cursor=cursor, resources=resources,
                                      instance=instance or dg.DagsterInstance.ephemeral())
    return sensor(context)


def write_events(landing: Path, rows: list[dict]) -> Path:
    """As `attiva serve` lands events: one JSON-lines file renamed into events/api/<date>/."""
    from activations.serve.events import EventWriter

    return EventWriter(landing).write(rows)


def cart_event(event_id: str, user_id: str, product_id: str, at: datetime) -> dict:
    return {"event_id": event_id, "event_type": "add_to_cart", "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "anonymous_id": f"D-{user_id}", "user_id": user_id, "product_id": product_id, "quantity": 1,
            "platform": "web"}


def test_the_event_driven_triggers_are_those_reading_events(defs):
    from orchestration.defs.fresh_events import EVENT_TRIGGERS

    assert sorted(t.name for t in EVENT_TRIGGERS) == ["trg_abandoned_cart", "trg_browse_abandonment"]


def test_the_dbt_arguments_select_the_triggers_and_their_parents_and_pass_as_of_only_when_pinned(tmp_path):
    from activations.messaging.fresh_events import dbt_run_args

    args = dbt_run_args(["trg_browse_abandonment", "trg_abandoned_cart"], tmp_path, None)
    assert args[0] == "run" and "--vars" not in args  # the project's tests run with the next full refresh
    assert args[args.index("--select") + 1] == (
        "+trg_abandoned_cart,config.materialized:incremental,source:raw.events+ "
        "+trg_browse_abandonment,config.materialized:incremental,source:raw.events+ "
        "trg_abandoned_cart trg_browse_abandonment")
    assert args[args.index("--target-path") + 1] == str(tmp_path)
    pinned = dbt_run_args(["trg_abandoned_cart"], tmp_path, HANDCRAFTED_AS_OF)
    assert json.loads(pinned[pinned.index("--vars") + 1]) == {"as_of": "2026-11-20 12:00:00"}


def test_the_event_sensor_requests_a_run_for_a_new_event_file_at_once(defs, tmp_path):
    import dagster as dg

    from orchestration.defs.fresh_events import event_messages
    from orchestration.defs.sensors import fresh_events

    landing = tmp_path / "landing"
    landing.mkdir()
    assert "no new event files" in tick(fresh_events, landing, None).skip_reason.skip_message
    other = landing / "shop/orders/orders.csv"  # not an event file: the landing sensor's business
    other.parent.mkdir(parents=True)
    other.write_text("order_id\n")
    age(other)
    collected = write_events(landing, [cart_event("E-1", "S1", "P4", HANDCRAFTED_AS_OF)])

    first = tick(fresh_events, landing, None)  # just written: the collector renames files into place whole
    [request] = first.run_requests
    assert request.tags["attiva/event_files"] == "1" and request.run_key.startswith("events-")
    assert not tick(fresh_events, landing, first.cursor).run_requests

    # Another file arrives while a run is still waiting in the queue: that run will load it, no second run.
    write_events(landing, [cart_event("E-2", "S1", "P2", HANDCRAFTED_AS_OF)])
    instance = dg.DagsterInstance.ephemeral()
    instance.create_run_for_job(event_messages)  # not started yet (queued runs need a code location)
    waiting = tick(fresh_events, landing, first.cursor, instance)
    assert not waiting.run_requests and "is waiting to start" in waiting.skip_reason.skip_message
    assert waiting.cursor == first.cursor
    second = tick(fresh_events, landing, first.cursor)
    assert len(second.run_requests) == 1 and second.run_requests[0].run_key != request.run_key

    # An event file copied in by other means settles first, as every landing file does.
    dropped = landing / "events" / "export.jsonl"
    shutil.copy(collected, dropped)
    settling = tick(fresh_events, landing, second.cursor)
    assert not settling.run_requests and "1 still being written" in settling.skip_reason.skip_message
    age(dropped)
    assert len(tick(fresh_events, landing, settling.cursor).run_requests) == 1


def test_the_landing_sensor_leaves_event_files_to_the_event_path_for_a_while(defs, tmp_path):
    from orchestration.defs.sensors import EVENTS_CATCH_UP_MINUTES, landing_files

    landing = tmp_path / "landing"
    orders = landing / "shop/orders/orders.csv"
    orders.parent.mkdir(parents=True)
    orders.write_text("order_id\n")
    age(orders)
    first = tick(landing_files, landing, None)  # a refresh: the event files after it wait for the next
    assert len(first.run_requests) == 1

    events = write_events(landing, [cart_event("E-1", "S1", "P4", HANDCRAFTED_AS_OF)])
    age(events)
    held = tick(landing_files, landing, first.cursor)
    assert not held.run_requests and "the event path sends what they trigger now" in held.skip_reason.skip_message
    still = tick(landing_files, landing, held.cursor)  # still new for the landing sensor, still held back
    assert not still.run_requests

    # Engagement files too: feedback/engagement_events has loaded them already.
    engagement = landing / "email_engagement" / "esp-events-1.jsonl"
    engagement.parent.mkdir(parents=True)
    engagement.write_text('{"engagement_id": "G-1"}\n')
    age(engagement)
    still = tick(landing_files, landing, still.cursor)
    assert not still.run_requests and "2 new event or engagement file(s)" in still.skip_reason.skip_message

    # Any other file starts the refresh at once, event files included.
    customers = landing / "shop/customers/customers.csv"
    customers.parent.mkdir(parents=True)
    customers.write_text("shop_customer_id\n")
    age(customers)
    refresh = tick(landing_files, landing, still.cursor)
    assert refresh.run_requests[0].tags["attiva/landing_files"] == "3"

    # Event files alone, once the catch-up interval has passed since the last refresh.
    age(write_events(landing, [cart_event("E-2", "S1", "P2", HANDCRAFTED_AS_OF)]))
    assert not tick(landing_files, landing, refresh.cursor).run_requests
    cursor = json.loads(refresh.cursor)
    cursor["refreshed_at"] -= (EVENTS_CATCH_UP_MINUTES + 1) * 60
    caught_up = tick(landing_files, landing, json.dumps(cursor))
    assert caught_up.run_requests[0].tags["attiva/landing_files"] == "1"

    # A cursor written before event files were held back still works.
    old = json.dumps(cursor["files"])
    assert tick(landing_files, landing, old).run_requests


def test_one_event_run_takes_a_new_cart_to_the_smtp_server_running_only_the_event_models(
        defs, handcrafted_warehouse, handcrafted_landing, pinned_as_of, sandbox, tmp_path):
    import dagster as dg
    import requests

    from activations.messaging.channels import load_channels
    from activations.messaging.policy import load_settings
    from activations.messaging.send import run_pass
    from activations.messaging.templates import Templates
    from orchestration.defs.fresh_events import event_messages
    from orchestration.defs.messages import declared_triggers
    from orchestration.defs.resources import Landing, Warehouse

    landing = tmp_path / "landing"
    shutil.copytree(handcrafted_landing, landing)  # mtimes kept: ingestion sees these files as loaded
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(handcrafted_warehouse, warehouse)
    # The full run's pass has already sent what the warehouse as built makes due (Laura's cart, ...).
    channels = load_channels()
    with duckdb.connect(str(warehouse)) as con:
        run_pass(con, declared_triggers(), channels, Templates(), load_settings(), pinned_as_of)
        [(mario,)] = con.execute("select customer_id from marts.customers where email = 'mario.rossi@gmail.com'") \
            .fetchall()
    for channel in channels.values():
        channel.close()
    # Mario (shop account S1) puts the shirt in his cart at 09:30; the reminder is due 2 h later.
    write_events(landing, [cart_event("E-CART-1", "S1", "P4", pinned_as_of - timedelta(hours=2, minutes=30))])

    def run() -> dg.ExecuteInProcessResult:
        return event_messages.execute_in_process(
            resources={"warehouse": Warehouse(path=str(warehouse)), "landing": Landing(path=str(landing))},
            instance=dg.DagsterInstance.ephemeral())

    def mail() -> list[dict]:
        answer = requests.get(f"{sandbox}/_sandbox/mail", params={"to": "mario.rossi@gmail.com", "limit": 100},
                              timeout=10)
        return [m for m in answer.json()["messages"] if m.get("attiva_message_id", "").startswith("abandoned_cart.")]

    before = len(mail())
    result = run()
    assert result.success
    [message] = mail()[before:]
    full = requests.get(f"{sandbox}/_sandbox/mail/{message['id']}", timeout=10).json()
    assert "Camicia Oxford" in full["text"] and full["subject"].startswith("Mario")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select state from activation.message_ledger where campaign = 'abandoned_cart' "
                           "and customer_id = ?", [mario]).fetchall() == [("sent",)]
    observed = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert observed["messages/abandoned_cart"]["this_run_sent"].value == 1
    assert observed["raw/events"]["event_path_rows_loaded"].value == 1
    assert not result.get_asset_materialization_events()  # observations only: no catch-up runs woken

    # Only the event-driven triggers and the incremental models they read: no customer 360, no audience,
    # no view (they read the new rows as they are), no test.
    results = json.loads((warehouse.parent / "dbt_target_events" / "run_results.json").read_text())["results"]
    ran = {r["unique_id"].split(".")[-1] for r in results}
    assert {"trg_abandoned_cart", "trg_browse_abandonment", "int_events", "int_identity__node_owners",
            "int_orders"} <= ran
    assert not ran & {"customers", "int_customers__360", "aud_cart_abandoners", "trg_win_back", "events",
                      "stg_events__events", "products", "int_identity__observations_crm"}  # CRM rows are not new
    assert not any(r["unique_id"].startswith("test.") for r in results)

    # Nothing new: no dbt, and nothing sent twice.
    again = run()
    assert again.success and len(mail()) == before + 1
    assert "seconds_dbt" not in next(e for e in again.all_events if e.event_type_value == "ASSET_OBSERVATION"
                             and e.asset_key.path == ["messages", "abandoned_cart"]
                             ).event_specific_data.asset_observation.metadata


def test_the_event_job_is_in_the_warehouse_pool_and_jumps_the_queue(defs):
    job = defs.resolve_job_def("event_messages")
    assert job.tags["dagster/priority"] == "10"
    [node] = job.graph.node_defs
    assert node.pool == "warehouse"
    assert defs.resolve_sensor_def("fresh_events").minimum_interval_seconds == 5
