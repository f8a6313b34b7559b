"""Planning a sync: the diff against the confirmed snapshot, per mode, on a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from activations.engine.plan import plan_sync
from activations.engine.state import ensure_state
from activations.manifest import Audience, Sync

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
COLUMNS = ("customer_id", "email", "first_name", "city", "consent_email")


def make_sync(mode: str, consent: str | None = "consent_email") -> Sync:
    audience = Audience("aud_test", "audiences.aud_test", "", COLUMNS)
    return Sync(name=f"aud_test__{mode}", audience=audience, destination="hubspot", mode=mode, key="customer_id",
                identifiers={"email": "email"}, fields={"firstname": "first_name"}, consent=consent)


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema audiences")
    con.execute("create table audiences.aud_test (customer_id varchar, email varchar, first_name varchar, "
                "city varchar, consent_email boolean)")
    con.execute("""insert into audiences.aud_test values
        ('c1', 'a@x.it', 'Anna', 'Roma', true), ('c2', 'b@x.it', 'Bruno', 'Pisa', true),
        ('c3', 'c@x.it', 'Carla', 'Bari', true), ('c4', 'd@x.it', 'Dario', 'Como', false),
        (null, 'e@x.it', 'Elsa', 'Asti', true)""")
    ensure_state(con)
    yield con
    con.close()


def confirm_everything(con, plan) -> None:
    """Stand-in for a successful apply: the snapshot takes every planned row."""
    con.execute(f"""delete from activation.sync_snapshots where sync_name = '{plan.sync_name}'
                    and row_key in (select row_key from activation.sync_plan_rows
                                    where plan_id = '{plan.plan_id}' and will_send)""")
    con.execute(f"""insert into activation.sync_snapshots (sync_name, row_key, row_hash, confirmed_at)
                    select sync_name, row_key, row_hash, now() from activation.sync_plan_rows
                    where plan_id = '{plan.plan_id}' and will_send and operation <> 'remove'""")


def rows(con, plan) -> set[tuple[str, str]]:
    return set(con.execute(f"select operation, row_key from activation.sync_plan_rows "
                           f"where plan_id = '{plan.plan_id}' and will_send").fetchall())


def test_first_plan_adds_only_eligible_rows(con):
    plan = plan_sync(con, make_sync("upsert"), NOW)
    # c4 has no consent, the last row has no key: neither is ever sent.
    assert rows(con, plan) == {("add", "c1"), ("add", "c2"), ("add", "c3")}
    assert (plan.audience_rows, plan.eligible_rows, plan.adds) == (5, 3, 3)


def test_only_mapped_columns_make_an_update(con):
    sync = make_sync("mirror")
    confirm_everything(con, plan_sync(con, sync, NOW))
    con.execute("update audiences.aud_test set city = 'Lecce' where customer_id = 'c1'")  # not mapped
    con.execute("update audiences.aud_test set first_name = 'Bruna' where customer_id = 'c2'")  # mapped
    con.execute("update audiences.aud_test set consent_email = false where customer_id = 'c3'")  # revoked
    con.execute("update audiences.aud_test set consent_email = true where customer_id = 'c4'")  # granted
    plan = plan_sync(con, sync, NOW)
    assert rows(con, plan) == {("update", "c2"), ("remove", "c3"), ("add", "c4")}
    assert (plan.adds, plan.updates, plan.removes, plan.unchanged) == (1, 1, 1, 1)


@pytest.mark.parametrize(("mode", "expected"), [
    ("upsert", {("add", "c4"), ("update", "c2")}),
    ("insert", {("add", "c4")}),
    ("update", {("update", "c2")}),
    ("mirror", {("add", "c4"), ("update", "c2"), ("remove", "c3")}),
    ("full_resync", {("add", "c4"), ("update", "c1"), ("update", "c2"), ("remove", "c3")}),
])
def test_each_mode_sends_what_it_promises(con, mode, expected):
    sync = make_sync(mode)
    confirm_everything(con, plan_sync(con, make_sync("upsert"), NOW))
    con.execute(f"update activation.sync_snapshots set sync_name = '{sync.name}'")
    con.execute("update audiences.aud_test set first_name = 'Bruna' where customer_id = 'c2'")
    con.execute("update audiences.aud_test set consent_email = false where customer_id = 'c3'")
    con.execute("update audiences.aud_test set consent_email = true where customer_id = 'c4'")
    assert rows(con, plan_sync(con, sync, NOW)) == expected


def test_a_plan_with_nothing_changed_is_empty(con):
    sync = make_sync("mirror")
    confirm_everything(con, plan_sync(con, sync, NOW))
    plan = plan_sync(con, sync, NOW)
    assert rows(con, plan) == set() and plan.unchanged == 3
    assert con.execute("select count(*) from activation.sync_plans").fetchone()[0] == 2
