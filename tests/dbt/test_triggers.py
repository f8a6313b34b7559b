"""Triggers (dbt models trg_*) on the handcrafted people, as_of 2026-11-20 12:00 UTC: exactly
who has an occurrence, its key, when it happened, whether the journey has exited, and the
payload the templates get; plus keys that stay put when the clock moves on, and policies
the messaging engine accepts."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from activations.build import build_warehouse
from tests.conftest import HANDCRAFTED_AS_OF
from tests.dbt.test_handcrafted import customer_of

pytestmark = pytest.mark.xdist_group("handcrafted")

TRIGGERS = ("trg_abandoned_cart", "trg_abandoned_cart_push", "trg_birthday", "trg_birthday_sms", "trg_welcome", "trg_lead_nurture",
            "trg_cross_sell", "trg_favourite_on_promotion", "trg_favourite_on_site", "trg_win_back",
            "trg_browse_abandonment", "trg_mql_handoff")

# trigger -> {(person, trigger_key with the person's customer_id written as `{id}`, exit_reason)}
EXPECTED = {
    # Laura's and Giulia's carts are open; Rita ordered an hour after carting; Mario's cart
    # (17 Nov, ordered on the 18th) is older than abandoned_cart_lookback_days.
    "trg_abandoned_cart": {
        ("laura", "{id}:2026-11-20 05:00:00", None),
        ("giulia", "{id}:2026-11-20 11:00:00", None),
        ("rita", "{id}:2026-11-20 04:00:00", "ordered"),
    },
    # Nobody in the handcrafted data has the app: tests/dbt/test_generated.py covers the push carts.
    "trg_abandoned_cart_push": set(),
    # Anna was born on 20 November; Mario on the 25th.
    "trg_birthday": {("anna", "{id}:2026", None)},
    "trg_birthday_sms": {("anna", "{id}:2026", None)},  # the same occurrences; consent_sms is checked at send time
    # Chiara's first email consent came 5 days ago (a revocation before it does not count);
    # Laura's 19 days ago is older than welcome_window_days.
    "trg_welcome": {("chiara", "{id}", None)},
    # Chiara became a lead on 1 October and an MQL on the 20th: sales took over.
    "trg_lead_nurture": {("chiara", "{id}", "became_mql")},
    # Davide's order of 12 November is 7 days old (and he has recommendations); Giulia's of
    # the 10th has none to suggest.
    "trg_cross_sell": {("davide", "O15", None)},
    # The coffee blend P1 is on promotion (PR1); Mario already bought it during it.
    "trg_favourite_on_promotion": {
        ("mario", "{id}:PR1", "ordered"),
        ("paola", "{id}:PR1", None),
        ("laura", "{id}:PR1", None),
    },
    # The same occurrences, as an on-site banner (consent_profiling is checked at send time).
    "trg_favourite_on_site": {
        ("mario", "{id}:PR1", "ordered"),
        ("paola", "{id}:PR1", None),
        ("laura", "{id}:PR1", None),
    },
    # Paola's last order (15 July) turned 90 days old on 13 October.
    "trg_win_back": {("paola", "{id}:2026-07-15", None)},
    # Giulia viewed the grinder P2 three days running; Laura viewed the tea P6 three times,
    # then carted it; Mario viewed the shirt P4 only twice.
    "trg_browse_abandonment": {
        ("giulia", "{id}:P2:2026-11-18", None),
        ("laura", "{id}:P6:2026-11-19", "carted"),
    },
    # Chiara became an MQL on 20 October: sales gets a task (she is neither SQL nor a customer yet).
    "trg_mql_handoff": {("chiara", "{id}:2026-10-20", None)},
}


def rows(warehouse: Path, table: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(f"select * from triggers.{table} order by trigger_key")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def by_person(warehouse: Path, table: str) -> dict[str, dict]:
    names = {v: k for k, v in customer_of(warehouse).items()}
    found = {}
    for row in rows(warehouse, table):
        person = names[row["customer_id"]]
        assert person not in found, f"{table}: two occurrences for {person}"
        found[person] = row
    return found


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_trigger_has_exactly_the_expected_occurrences(handcrafted_warehouse, trigger):
    ids = customer_of(handcrafted_warehouse)
    names = {v: k for k, v in ids.items()}
    found = {(names[r["customer_id"]], r["trigger_key"], r.get("exit_reason")) for r in rows(handcrafted_warehouse, trigger)}
    expected = {(p, key.format(id=ids[p]), exit_reason) for p, key, exit_reason in EXPECTED[trigger]}
    assert found == expected


def test_abandoned_cart_lists_the_carts_products_at_their_current_price(handcrafted_warehouse):
    carts = by_person(handcrafted_warehouse, "trg_abandoned_cart")
    laura = carts["laura"]
    # Added on her phone (an anonymous device she identified on earlier), 06:00 Rome time.
    assert laura["occurred_at"] == datetime(2026, 11, 20, 5, 0)
    assert json.loads(laura["cart_products_json"]) == [
        {"product_id": "P6", "name": "Tè Verde Sencha", "price": 7.5, "quantity": 2}]
    assert laura["cart_value"] == 15.0
    assert json.loads(carts["giulia"]["cart_products_json"])[0]["name"] == "Camicia Oxford"


def test_birthday_starts_at_the_customers_local_midnight(handcrafted_warehouse):
    anna = by_person(handcrafted_warehouse, "trg_birthday")["anna"]
    assert anna["occurred_at"] == datetime(2026, 11, 19, 23, 0), "midnight in Europe/Rome, in UTC"
    assert anna["first_name"] == "Anna"


def test_payloads_carry_what_the_templates_show(handcrafted_warehouse):
    davide = by_person(handcrafted_warehouse, "trg_cross_sell")["davide"]
    assert (davide["order_id"], davide["product_name"]) == ("O15", "Macinacaffè Manuale")
    assert davide["occurred_at"] == datetime(2026, 11, 19, 10, 0), "7 days after the order"
    paola = by_person(handcrafted_warehouse, "trg_favourite_on_promotion")["paola"]
    assert (paola["product_id"], paola["product_name"], paola["discount_pct"], paola["current_price"]) == (
        "P1", "Miscela Classica 1kg", 20.0, 10.32)
    win_back = by_person(handcrafted_warehouse, "trg_win_back")["paola"]
    assert (win_back["days_since_last_order"], win_back["occurred_at"]) == (128, datetime(2026, 10, 13, 9, 0))
    giulia = by_person(handcrafted_warehouse, "trg_browse_abandonment")["giulia"]
    assert (giulia["product_id"], giulia["viewed_product_name"]) == ("P2", "Macinacaffè Manuale")
    assert giulia["occurred_at"] == datetime(2026, 11, 20, 9, 0), "the third view"
    chiara = by_person(handcrafted_warehouse, "trg_welcome")["chiara"]
    assert chiara["occurred_at"] == datetime(2026, 11, 15, 10, 0)


def test_keys_and_times_stay_put_when_the_clock_moves_on(handcrafted_warehouse, tmp_path):
    # Windows are relative to as_of: three hours later nothing happened, so the same
    # occurrences must come out with the same keys (the ledger sends each key once).
    later = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, later)
    assert build_warehouse(as_of=HANDCRAFTED_AS_OF + timedelta(hours=3), warehouse=later).ok

    def occurrences(warehouse):
        return {t: {(r["trigger_key"], r["customer_id"], r["occurred_at"], r.get("exit_reason"))
                    for r in rows(warehouse, t)} for t in TRIGGERS}

    assert occurrences(later) == occurrences(handcrafted_warehouse)


def test_every_trigger_declares_a_policy_the_messaging_engine_accepts(handcrafted_warehouse):
    from activations.messaging import policy

    manifest = json.loads((handcrafted_warehouse.parent / "dbt_target" / "manifest.json").read_text())
    with duckdb.connect(str(handcrafted_warehouse), read_only=True) as con:
        customer_columns = {r[0] for r in con.execute("describe marts.customers").fetchall()}
    triggers = {t.name: t for t in policy.triggers(manifest, channels={"email", "esp", "webhook", "sales_task", "sms",
                                                                       "push", "on_site"},
                                                   customer_columns=customer_columns)}
    assert set(triggers) == set(TRIGGERS)
    assert [s.template for s in triggers["trg_welcome"].steps] == ["welcome_1", "welcome_2", "welcome_3"]
    assert [s.delay.days for s in triggers["trg_lead_nurture"].steps] == [0, 7, 14]
    assert triggers["trg_birthday"].steps[0].coupon.discount_pct == 15
    assert "cart_products_json" in triggers["trg_abandoned_cart"].payload_columns
    on_site = triggers["trg_favourite_on_site"]  # on-site: profiling consent, no quiet hours, below the email
    assert (on_site.channel, on_site.consent, on_site.quiet_hours) == ("on_site", "consent_profiling", None)
    assert on_site.priority < triggers["trg_favourite_on_promotion"].priority
    assert max(triggers.values(), key=lambda t: t.priority).name == "trg_abandoned_cart"
