"""Variants allocated by Thompson sampling: the split follows the rewards recorded so far, each
customer's variant and its probability are logged at planning and kept on a re-plan, the holdout
is untouched, and the inverse-propensity estimate from those logs recovers a variant's true rate."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from activations.cli import main
from activations.messaging import allocation, ledger, offpolicy
from activations.messaging.policy import PolicyError, Step, triggers
from tests.messaging.test_send import NOW, create_tables, make_trigger

AB = ("favourite_on_promotion", "favourite_on_promotion_b")
CAMPAIGN = "favourite_on_promotion"


def bandit(holdout: float = 0.0):
    trigger = make_trigger(holdout=holdout)
    return dataclasses.replace(trigger, steps=(Step(1, AB[0], timedelta(0), None, AB[1:], "thompson", "clicked"),))


@pytest.fixture
def warehouse(tmp_path):
    """The tables planning reads, and a stand-in for measurement.message_outcomes (a dbt view over the
    ledger and the ESP's events) with the columns the allocation reads."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    create_tables(con)
    ledger.ensure_ledger(con)
    con.execute("create schema measurement; create table main.clicks (message_id varchar)")
    con.execute("""create view measurement.message_outcomes as
                   select l.message_id, l.campaign, l.step, l.template as variant, l.state = 'held_out' as is_holdout,
                          l.sent_at, c.message_id is not null as clicked
                   from activation.message_ledger as l left join main.clicks as c on c.message_id = l.message_id
                   where l.state in ('sent', 'held_out')""")
    yield con
    con.close()


def add_sent(con, template: str, sent: int, clicked: int, *, days_ago: int = 3, probability: float = 0.5) -> None:
    """`sent` messages of `template` sent `days_ago`, the first `clicked` of them clicked."""
    at = NOW.replace(tzinfo=None) - timedelta(days=days_ago)
    start = con.execute("select count(*) from activation.message_ledger").fetchall()[0][0]
    keys = [f"past-{start + i}" for i in range(sent)]
    rows = pl.DataFrame({"trigger_key": keys, "customer_id": [f"old-{k}" for k in keys],
                         "message_id": [ledger.message_id(CAMPAIGN, k, 1) for k in keys]})
    con.register("rows", rows)
    con.execute("""insert into activation.message_ledger (campaign, trigger_key, step, customer_id, template, state,
                   message_id, sent_at, planned_at, variant_probability)
                   select ?, trigger_key, 1, customer_id, ?, 'sent', message_id, ?, ?, ? from rows""",
                [CAMPAIGN, template, at, at, probability])
    con.execute("insert into main.clicks select message_id from rows limit ?", [clicked])


def add_occurrences(con, customers: list[str]) -> None:
    """One occurrence each, `new-<n>`, an hour before NOW."""
    con.register("rows", pl.DataFrame({"trigger_key": [f"new-{i}" for i in range(len(customers))],
                                       "customer_id": customers}))
    con.execute("insert into triggers.trg_test (trigger_key, customer_id, occurred_at) "
                "select trigger_key, customer_id, ? from rows", [NOW.replace(tzinfo=None) - timedelta(hours=1)])


def planned(con) -> pl.DataFrame:
    return con.sql("""select customer_id, template, state, variant_probability from activation.message_ledger
                      where trigger_key like 'new-%' order by customer_id""").pl()


def test_thompson_is_declared_per_step_and_needs_an_ab_test():
    columns = {c: {} for c in ("trigger_key", "customer_id", "occurred_at")}

    def declare(step):
        return {"nodes": {"model.attiva.trg_promo": {
            "resource_type": "model", "name": "trg_promo", "schema": "triggers", "columns": columns,
            "config": {"meta": {"messaging": {"channel": "email", "consent": "none", "steps": [step]}}}}}}

    [trigger] = triggers(declare({"template": list(AB), "allocation": "thompson", "reward": "converted"}), {"email"})
    assert (trigger.steps[0].allocation, trigger.steps[0].reward) == ("thompson", "converted")
    [default] = triggers(declare({"template": list(AB)}), {"email"})
    assert default.steps[0].allocation == "even"  # existing campaigns keep their even split
    with pytest.raises(PolicyError, match=r"steps\[0\]\.allocation.*list two templates"):
        triggers(declare({"template": AB[0], "allocation": "thompson"}), {"email"})


def test_the_allocation_moves_toward_the_variant_that_earns_more():
    seed = allocation.day_seed(CAMPAIGN, 1, NOW)
    assert allocation.thompson([0, 0], [0, 0], seed) == [0.5, 0.5]  # nothing learned: an even split
    shares = [allocation.thompson([4 * n, 6 * n], [100 * n, 100 * n], seed)[1] for n in (1, 4, 16)]
    assert 0.5 < shares[0] < shares[1] < shares[2] <= 1 - allocation.EXPLORE / 2  # never past the exploration floor
    assert allocation.thompson([4, 6], [100, 100], seed) == allocation.thompson([4, 6], [100, 100], seed)


def test_planning_logs_each_variant_with_the_probability_it_had(warehouse):
    add_sent(warehouse, AB[0], 200, 4)
    add_sent(warehouse, AB[1], 200, 16)
    add_sent(warehouse, AB[0], 200, 0, days_ago=0)  # too fresh to count: not 200 failures for variant A
    add_occurrences(warehouse, [f"c{i:03}" for i in range(400)])
    ledger.plan_new(warehouse, bandit(), NOW)
    rows = planned(warehouse)
    shares = allocation.shares(warehouse, CAMPAIGN, 1, AB, "clicked", NOW)
    assert shares[1] > 0.95
    assert rows["variant_probability"].to_list() == [shares[AB.index(t)] for t in rows["template"]]
    assert abs((rows["template"] == AB[1]).mean() - shares[1]) < 0.03

    # Planned again (the same day, the same outcomes): every customer keeps variant and probability.
    warehouse.execute("delete from activation.message_ledger where trigger_key like 'new-%'")
    ledger.plan_new(warehouse, bandit(), NOW + timedelta(hours=3))
    assert planned(warehouse).equals(rows)


def test_the_holdout_is_decided_first_and_keeps_its_share(warehouse):
    add_sent(warehouse, AB[1], 100, 10)
    add_sent(warehouse, AB[0], 100, 1)
    customers = [f"c{i:04}" for i in range(2000)]
    add_occurrences(warehouse, customers)
    ledger.plan_new(warehouse, bandit(holdout=0.2), NOW)
    rows = planned(warehouse)
    held = ledger.in_holdout(CAMPAIGN, pl.Series(customers), 0.2)
    assert (rows["state"] == "held_out").to_list() == held.to_list()  # the same people as with an even split
    for template in AB:  # each variant keeps about the campaign's holdout share
        assert abs((rows.filter(pl.col("template") == template)["state"] == "held_out").mean() - 0.2) < 0.05


def test_an_even_ab_step_logs_its_even_probability_and_a_single_template_none(warehouse):
    add_occurrences(warehouse, [f"c{i}" for i in range(10)])
    even = dataclasses.replace(bandit(), steps=(Step(1, AB[0], timedelta(0), None, AB[1:]),
                                                Step(2, "welcome", timedelta(hours=1))))
    ledger.plan_new(warehouse, even, NOW)
    by_step = dict(warehouse.execute("select step, list(distinct variant_probability) from activation.message_ledger "
                                     "where trigger_key like 'new-%' group by step").fetchall())
    assert by_step == {1: [0.5], 2: [None]}


def test_the_ips_estimate_recovers_a_variants_true_rate_from_adaptive_logs():
    rng = np.random.default_rng(7)
    true = {"a": 0.04, "b": 0.06}
    frames = []
    for day in range(30):  # the logging policy drifts toward b, as a bandit's does
        share_b = min(0.5 + day * 0.015, 0.9)
        chosen = np.where(rng.random(2000) < share_b, "b", "a")
        frames.append(pl.DataFrame({
            "variant": chosen, "probability": np.where(chosen == "b", share_b, 1 - share_b),
            "reward": (rng.random(2000) < np.vectorize(true.get)(chosen)).astype(int)}))
    logs = pl.concat(frames)
    for variant, rate in true.items():
        found = offpolicy.estimate(logs, {variant: 1.0})
        low, high = found.interval
        assert low <= rate <= high and found.standard_error < 0.005
    even = offpolicy.estimate(logs, {"a": 0.5, "b": 0.5})
    assert even.interval[0] <= 0.05 <= even.interval[1]
    assert offpolicy.estimate(logs, {"c": 1.0}).rate is None  # never logged: the logs cannot tell


def test_an_older_ledger_gains_the_probability_column(tmp_path):
    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:
        old = ledger.TABLES["message_ledger"].replace(", variant_probability double", "").replace(
            ",\n        variant_probability double", "")
        assert "variant_probability" not in old
        con.execute(f"create schema activation; create table activation.message_ledger ({old})")
        ledger.ensure_ledger(con)
        ledger.ensure_ledger(con)  # once only
        assert "variant_probability" in {r[0] for r in con.execute("describe activation.message_ledger").fetchall()}


def test_the_variants_command_shows_rates_allocation_and_what_each_variant_would_earn(warehouse, tmp_path, capsys):
    add_sent(warehouse, AB[0], 300, 12, probability=0.5)
    add_sent(warehouse, AB[1], 300, 24, probability=0.5)
    add_occurrences(warehouse, [f"c{i}" for i in range(50)])
    ledger.plan_new(warehouse, bandit(), NOW)
    warehouse.close()
    assert main(["messages", "variants", CAMPAIGN, "--warehouse", str(tmp_path / "warehouse.duckdb")]) == 0
    lines = {line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    # observed rate, then the share its latest planned message had (Thompson's), then IPS = observed here
    assert lines[AB[0]][2:4] == ["300", "4.00%"] and lines[AB[1]][2:4] == ["300", "8.00%"]
    assert float(lines[AB[1]][4].rstrip("%")) > 90 and lines[AB[1]][5] == "8.00%"
    assert lines["(even"][3:5] == ["600", "6.00%"]  # (even split): 600 messages, IPS 6 %
    assert main(["messages", "variants", "nothing", "--warehouse", str(tmp_path / "warehouse.duckdb")]) == 1
