"""An incremental build gives exactly what a full rebuild over the same data gives: build the
handcrafted people, land a few new events, CRM contacts and orders (with the social tests' leads and
interactions: tests/dbt/conftest.py), build incrementally, and compare every mart and audience with a
`--full-refresh` build of a copy."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.xdist_group("handcrafted")

# New landing files: fresh traffic from known people, a device newly tied to an account,
# a new lead, a CRM contact that joins an existing person, a new order, a refund of an old one,
# an event that links two people seen apart so far (Laura's account and Chiara's email: they
# merge, one customer id disappears), and Laura's device logged into Franco's account (the
# device becomes shared: its links are cut and its anonymous events lose their customer).
NEW_FILES = {
    "events/events_more.jsonl": "\n".join([
        '{"event_id":"N1","event_type":"product_view","occurred_at":"2026-11-20T11:00:00Z",'
        '"anonymous_id":"D1","user_id":"S1","product_id":"P3","platform":"web"}',
        '{"event_id":"N2","event_type":"login","occurred_at":"2026-11-20T11:05:00Z",'
        '"anonymous_id":"D9","user_id":"S4","platform":"app"}',
        '{"event_id":"N3","event_type":"page_view","occurred_at":"2026-11-19T08:00:00Z",'
        '"anonymous_id":"D9","platform":"app","url":"/"}',
        '{"event_id":"N4","event_type":"form_submit","occurred_at":"2026-11-20T10:00:00Z",'
        '"anonymous_id":"D10","email":"nuovo.lead@example.it","first_name":"Nuovo","last_name":"Lead",'
        '"company":"Acme Srl","form_name":"contact_sales","lead_source":"web_form","platform":"web"}',
        '{"event_id":"E1","event_type":"page_view","occurred_at":"2026-11-10T08:00:00Z",'
        '"anonymous_id":"D1","platform":"web","url":"/"}',
        '{"event_id":"N5","event_type":"login","occurred_at":"2026-11-20T09:00:00Z",'
        '"anonymous_id":"D2","user_id":"S4","platform":"web"}',
        '{"event_id":"N6","event_type":"identify","occurred_at":"2026-11-20T09:30:00Z",'
        '"anonymous_id":"D11","user_id":"S3","email":"chiara@studiofontana.it","platform":"web"}',
    ]) + "\n",
    "crm/contacts/contacts_more.csv":
        "contact_id,email,phone,first_name,last_name,lifecycle_stage,lead_source,created_at,updated_at\n"
        "C30,rita.gallo@example.it,,Rita,Gallo,lead,event,2026-11-18 10:00:00,2026-11-18 10:00:00\n"
        "C31,nuovo.lead@example.it,+39 340 7778899,Nuovo,Lead,mql,web_form,2026-11-20 09:00:00,2026-11-20 09:00:00\n",
    "shop/orders/orders_more.csv":
        "order_id,shop_customer_id,email,phone,ordered_at,status,total_amount,channel\n"
        "O90,S4,franco.gallo@example.it,,2026-11-19 10:00:00,completed,22.40,app\n"
        "O1,S1,mario.rossi@gmail.com,,2026-11-18 09:00:00,refunded,25.80,web\n",
    "shop/order_items/order_items_more.csv":
        "order_item_id,order_id,product_id,quantity,unit_price\n"
        "O90-1,O90,P1,1,12.90\n"
        "O90-2,O90,P3,1,9.50\n",
}


def tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Every mart and audience table, rows sorted."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('marts', 'audiences') order by 1, 2").fetchall()]
        return {name: sorted(con.execute(f"select * from {name}").fetchall(), key=repr) for name in names}


def land(landing: Path) -> None:
    """NEW_FILES (tests/dbt/conftest.py lands them with the social tests' files)."""
    for relative, text in NEW_FILES.items():
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        (landing / relative).write_text(text)


def test_incremental_build_equals_full_rebuild(handcrafted_warehouse, on_top):
    incremental, rebuilt = on_top
    expected, got = tables(rebuilt), tables(incremental)
    assert got.keys() == expected.keys() and len(expected) >= 16
    for name, rows in expected.items():
        assert got[name] == rows, f"{name} differs after an incremental build"
    # the new data did arrive
    identifiers = expected["marts.customer_identifiers"]

    def owners_of(kind: str, value: str) -> set[str]:
        return {r[0] for r in identifiers if r[1:3] == (kind, value)}

    assert len(owners_of("email", "nuovo.lead@example.it")) == 1
    # Laura and Chiara are now one customer, under Laura's id (her account is older)
    before = {r[0] for r in tables(handcrafted_warehouse)["marts.customer_identifiers"]
              if r[1:3] == ("shop_customer_id", "S3")}
    assert owners_of("shop_customer_id", "S3") == owners_of("crm_contact_id", "C9") == before
    # Laura's first device is shared now: kept as an identifier of both, merging no one
    assert {r[6] for r in identifiers if r[1:3] == ("device_id", "D2")} == {True}
    assert owners_of("device_id", "D2") == owners_of("shop_customer_id", "S3") | owners_of("shop_customer_id", "S4")
    # ... and her anonymous page view on it has no customer any more
    assert [r[1] for r in expected["marts.events"] if r[0] == "E4"] == [None]
