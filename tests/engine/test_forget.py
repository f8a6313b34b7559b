"""`attiva forget`: a person erased from the warehouse, suppressed for good, and removed from a
destination by the next run even of a sync whose mode never removes."""

from __future__ import annotations

import hashlib
import shutil

import duckdb
import pytest

from activations.engine.run import run_sync
from activations.forget import forget
from activations.manifest import Audience, Sync

from .setups import FAST_POLICY, make_client

pytestmark = pytest.mark.xdist_group("engine")

MARIO = "mario.rossi@gmail.com"  # the handcrafted CRM contact C1, shop customer and web visitor


def test_forget_erases_suppresses_and_removes_from_destinations(handcrafted_warehouse, sandbox, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    [(mario,)] = con.execute("select customer_id from marts.customers where email = ?", [MARIO]).fetchall()
    audience = Audience("customers", "marts.customers", "", ("customer_id", "email", "first_name", "email_marketable"),
                        unique_columns=("customer_id",))
    # An upsert sync: on its own it never removes anybody.
    sync = Sync("customers__webhook", audience, "t_webhook", "upsert", "customer_id", {"email": "email"},
                {"first_name": "first_name"}, None)
    client = make_client(sandbox.base, "webhook")
    # delivered, but the handcrafted CRM's unusable addresses, set aside as invalid
    assert run_sync(con, sync, client, policy=FAST_POLICY).status in ("success", "delivered_except_invalid")
    endpoint = next(iter(sandbox.http.get(f"{sandbox.base}/_sandbox/state/webhook", timeout=10).json()["endpoints"]
                         .values()))
    assert mario in endpoint["rows"]

    report = forget(con, "  Mario.Rossi@Gmail.com ")
    assert report.customers == [mario] and report.sync_removals == {"customers__webhook": 1}
    # Never again: the address is on the suppression list, hashed, and nowhere in clear.
    assert con.execute("select reason from activation.suppression_list where email_sha256 = ?",
                       [hashlib.sha256(MARIO.encode()).hexdigest()]).fetchall() == [("forgotten",)]
    for table in ("raw.crm_contacts", "raw.shop_customers", "raw.events", "raw.shop_orders", "raw.consent"):
        assert con.execute(f"select count(*) from {table} where lower(trim(email)) = ?", [MARIO]).fetchone()[0] == 0
    assert con.execute("select count(*) from raw.crm_contacts where first_name = 'Mario'").fetchone()[0] == 0
    assert con.execute("select count(*) from marts.customers where customer_id = ?", [mario]).fetchone()[0] == 0
    assert con.execute("select count(*) from marts.customer_identifiers where identifier_value = ?",
                       [MARIO]).fetchone()[0] == 0
    # Orders stay (the business's records), without the person.
    assert con.execute("select count(*) from raw.shop_orders").fetchone()[0] > 0

    result = run_sync(con, sync, client, policy=FAST_POLICY)
    assert result.plan.removes == 1 and result.confirmed == 1
    endpoint = next(iter(sandbox.http.get(f"{sandbox.base}/_sandbox/state/webhook", timeout=10).json()["endpoints"]
                         .values()))
    assert mario not in endpoint["rows"]
    assert con.execute("select count(*) from activation.sync_snapshots where row_key = ?", [mario]).fetchone()[0] == 0
    assert con.execute("select count(*) from activation.forget_removals").fetchone()[0] == 0
    con.close()


def test_forgetting_nobody_still_suppresses_the_address(handcrafted_warehouse, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        report = forget(con, "stranger@example.com")
        assert report.customers == [] and report.emails == 1
        assert con.execute("select count(*) from activation.suppression_list").fetchone()[0] == 1
