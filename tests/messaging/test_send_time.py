"""Send-time optimization on a real DuckDB file: a campaign declaring `send_time: best_hour` plans each
step at the customer's best hour (their own, else their segment's), unless that falls in quiet hours,
after the step's expiry or past the next step; campaigns without it are planned as before."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from activations.manifest import load_manifest
from activations.messaging import ledger, send_time, status
from activations.messaging.policy import PolicyError, QuietHours, Step, triggers
from activations.messaging.send_time import next_best_hour
from tests.messaging.test_send import NOW, add_customer, add_occurrence, make_trigger, warehouse  # noqa: F401

pytestmark = pytest.mark.xdist_group("messaging_send")

OCCURRED = NOW - timedelta(hours=1)  # 11:00 UTC, 12:00 in Rome
QUIET = QuietHours(time(21), time(8))


def best_hours(con, *rows: tuple[str, str, int | None, str | None]) -> None:
    """marts.customer_best_send_hour as dbt builds it: (customer_id, timezone, best_hour, hour_from)."""
    con.execute("""create table if not exists marts.customer_best_send_hour (customer_id varchar, timezone varchar,
                   segment varchar, engagements bigint, best_hour integer, hour_from varchar)""")
    for customer_id, zone, hour, hour_from in rows:
        con.execute("insert into marts.customer_best_send_hour values (?, ?, 'loyal', 5, ?, ?)",
                    [customer_id, zone, hour, hour_from])


def best_hour_trigger(**changes):
    return dataclasses.replace(make_trigger(quiet=QUIET, **changes), send_time="best_hour")


def planned(con) -> dict[tuple[str, int], tuple[datetime, str]]:
    return {(k, s): (due, timed_by) for k, s, due, timed_by in con.execute(
        "select trigger_key, step, due_at, timed_by from activation.message_ledger").fetchall()}


def utc(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour)


def test_a_customer_who_opens_at_19_in_rome_gets_the_message_at_19_local_after_the_delay(warehouse):  # noqa: F811
    add_customer(warehouse, "evening")
    add_customer(warehouse, "new_yorker", timezone="America/New_York")
    best_hours(warehouse, ("evening", "Europe/Rome", 19, "own_history"),
               ("new_yorker", "America/New_York", 9, "own_history"))
    add_occurrence(warehouse, "k-evening", "evening", at=OCCURRED)
    add_occurrence(warehouse, "k-ny", "new_yorker", at=OCCURRED)
    ledger.plan_new(warehouse, best_hour_trigger(delay=timedelta(hours=2)), NOW)
    # Due at 13:00 UTC (14:00 Rome, 08:00 New York): moved to 19:00 Rome (18:00 UTC), 09:00 New York (14:00 UTC).
    assert planned(warehouse) == {("k-evening", 1): (utc(20, 18), "best_hour"),
                                  ("k-ny", 1): (utc(20, 14), "best_hour")}
    _, [row] = status.why(warehouse, "evening")
    assert row["explanation"] == "waiting: due 2026-11-20 18:00 UTC, the customer's best hour"


def test_a_customer_without_history_takes_the_segment_hour_and_one_without_either_goes_as_due(warehouse):  # noqa: F811
    for customer in ("newcomer", "unknown", "not_in_mart"):
        add_customer(warehouse, customer)
    best_hours(warehouse, ("newcomer", "Europe/Rome", 10, "segment"), ("unknown", "Europe/Rome", None, None))
    for customer in ("newcomer", "unknown", "not_in_mart"):
        add_occurrence(warehouse, f"k-{customer}", customer, at=OCCURRED)
    ledger.plan_new(warehouse, best_hour_trigger(), NOW)
    assert planned(warehouse) == {("k-newcomer", 1): (utc(21, 9), "segment_hour"),
                                  ("k-unknown", 1): (OCCURRED.replace(tzinfo=None), "as_soon_as_due"),
                                  ("k-not_in_mart", 1): (OCCURRED.replace(tzinfo=None), "as_soon_as_due")}


def test_a_best_hour_in_quiet_hours_or_past_expiry_leaves_the_time_as_due(warehouse):  # noqa: F811
    for customer in ("night_owl", "evening"):
        add_customer(warehouse, customer)
    best_hours(warehouse, ("night_owl", "Europe/Rome", 23, "own_history"),
               ("evening", "Europe/Rome", 19, "own_history"))
    add_occurrence(warehouse, "k-owl", "night_owl", at=OCCURRED)
    add_occurrence(warehouse, "k-evening", "evening", at=OCCURRED)
    # Expires 3 h after 13:00 UTC: 19:00 Rome (18:00 UTC) is too late.
    ledger.plan_new(warehouse, best_hour_trigger(delay=timedelta(hours=2), expires=timedelta(hours=3)), NOW)
    due = utc(20, 13)
    assert planned(warehouse) == {("k-owl", 1): (due, "as_soon_as_due"), ("k-evening", 1): (due, "as_soon_as_due")}


def test_a_step_never_moves_past_the_next_one_so_a_journey_keeps_its_order(warehouse):  # noqa: F811
    add_customer(warehouse, "evening")
    best_hours(warehouse, ("evening", "Europe/Rome", 19, "own_history"))
    add_occurrence(warehouse, "k1", "evening", at=OCCURRED)
    steps = (Step(1, "favourite_on_promotion", timedelta(0)), Step(2, "favourite_on_promotion", timedelta(hours=2)))
    ledger.plan_new(warehouse, dataclasses.replace(best_hour_trigger(), steps=steps), NOW)
    # Step 1's 19:00 would come after step 2 is due (13:00 UTC): it stays; step 2 moves.
    assert planned(warehouse) == {("k1", 1): (OCCURRED.replace(tzinfo=None), "as_soon_as_due"),
                                  ("k1", 2): (utc(20, 18), "best_hour")}


def test_campaigns_without_send_time_are_planned_as_before(warehouse):  # noqa: F811
    add_customer(warehouse, "evening")
    best_hours(warehouse, ("evening", "Europe/Rome", 19, "own_history"))
    add_occurrence(warehouse, "k1", "evening", at=OCCURRED)
    ledger.plan_new(warehouse, make_trigger(delay=timedelta(hours=2), quiet=QUIET), NOW)
    assert planned(warehouse) == {("k1", 1): (utc(20, 13), "as_soon_as_due")}


def test_planned_late_it_waits_for_the_next_best_hour_from_now(warehouse):  # noqa: F811
    add_customer(warehouse, "morning")
    best_hours(warehouse, ("morning", "Europe/Rome", 9, "own_history"))
    add_occurrence(warehouse, "k1", "morning", at=NOW - timedelta(hours=6))  # 07:00 Rome; 09:00 passed unplanned
    ledger.plan_new(warehouse, best_hour_trigger(), NOW)
    assert planned(warehouse) == {("k1", 1): (utc(21, 8), "best_hour")}


def test_an_older_ledger_gains_the_timed_by_column(warehouse):  # noqa: F811
    old = ledger.TABLES["message_ledger"].replace(",\n        timed_by string", "")
    warehouse.execute(f"create schema activation; create table activation.message_ledger ({old})")
    ledger.ensure_ledger(warehouse)
    assert "timed_by" in {r[0] for r in warehouse.execute("describe activation.message_ledger").fetchall()}


@pytest.mark.parametrize(("start", "hour", "expected"), [
    (datetime(2026, 11, 20, 18, 30), 19, datetime(2026, 11, 20, 18, 30)),  # already 19:30 in Rome: now
    (datetime(2026, 11, 20, 19, 0), 19, datetime(2026, 11, 21, 18, 0)),  # 20:00 in Rome: tomorrow
    (datetime(2026, 10, 24, 20, 0), 19, datetime(2026, 10, 25, 18, 0)),  # across the end of summer time
    (datetime(2026, 3, 28, 20, 0), 19, datetime(2026, 3, 29, 17, 0)),  # across its start
])
def test_the_next_best_hour_is_on_the_customers_clock(start, hour, expected):
    assert next_best_hour(start, hour, ZoneInfo("Europe/Rome")) == expected


def test_send_time_is_declared_in_the_policy_and_checked():
    manifest = load_manifest()
    node = manifest["nodes"]["model.attiva.trg_win_back"]
    assert {t.campaign: t.send_time for t in triggers(manifest, {"email", "sales_task", "sms", "push", "on_site"})}["win_back"] \
        == node["config"]["meta"]["messaging"].get("send_time", "as_soon_as_due")
    broken = copy.deepcopy(manifest)
    broken["nodes"]["model.attiva.trg_win_back"]["config"]["meta"]["messaging"]["send_time"] = "whenever"
    with pytest.raises(PolicyError, match="meta.messaging.send_time"):
        triggers(broken, {"email", "sales_task", "sms", "push", "on_site"})



def test_a_control_group_stays_as_soon_as_due_whatever_its_history(warehouse):  # noqa: F811
    customers = [f"c{i}" for i in range(200)]
    for customer in customers:
        add_customer(warehouse, customer)
        add_occurrence(warehouse, f"k-{customer}", customer, at=OCCURRED)
    best_hours(warehouse, *((c, "Europe/Rome", 19, "own_history") for c in customers))
    trigger = dataclasses.replace(best_hour_trigger(), send_time_control=0.3)
    ledger.plan_new(warehouse, trigger, NOW)
    found = planned(warehouse)
    control = {k for k, (due, timed_by) in found.items() if timed_by == "control"}
    assert all(due == OCCURRED.replace(tzinfo=None) for k, (due, _) in found.items() if k in control)
    assert all(found[k] == (utc(20, 18), "best_hour") for k in found if k not in control)
    assert 40 <= len(control) <= 80  # a 30 % draw of 200 (one standard error 6.5)
    # The draw is the customer's, not the occurrence's: a later occurrence of theirs falls in the same group.
    assert all(send_time.in_control(trigger, key.removeprefix("k-")) == ((key, 1) in control)
               for key in (f"k-{c}" for c in customers))
    other = dataclasses.replace(trigger, campaign="win_back")
    assert {c for c in customers if send_time.in_control(other, c)} != {k[0][2:] for k in control}


def test_a_control_group_without_best_hour_is_refused():
    manifest = load_manifest()
    broken = copy.deepcopy(manifest)
    policy = broken["nodes"]["model.attiva.trg_welcome"]["config"]["meta"]["messaging"]
    policy["send_time_control"] = 0.2
    with pytest.raises(PolicyError, match="meta.messaging.send_time_control.*best_hour"):
        triggers(broken, {"email", "sales_task", "sms", "push", "on_site"})
    policy["send_time"], policy["send_time_control"] = "best_hour", 1.5
    with pytest.raises(PolicyError, match="meta.messaging.send_time_control"):
        triggers(broken, {"email", "sales_task", "sms", "push", "on_site"})
