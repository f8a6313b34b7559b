"""The product catalog kept in Meta's Commerce catalog and Google Merchant Center through run_sync, over
real HTTP to the sandbox: a mirror keyed by product id with no identifiers; a product the platform
refuses rejected with its reason while the rest go; a second run sends only the changed products and
deletes the withdrawn one; an ended promotion leaves the platform; Meta's batches at 5,000 requests and
only confirmed once Meta finished them; Google's quota waited out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activations.engine.run import run_sync
from activations.erasure import Subject, request_erasure
from activations.manifest import DEFAULT_GUARDS, Audience, Sync

from .setups import FAST_POLICY, TOKENS, make_config, requests_served, sandbox_state

pytestmark = pytest.mark.xdist_group("engine")

CATALOG = "catalog.catalog_test"
FIELDS = ("title", "description", "brand", "availability", "condition", "price", "currency", "sale_price",
          "sale_starts_at", "sale_ends_at", "link", "image_link")
CATALOG_TYPES = ("meta_catalog", "google_merchant")
META_CATALOG = "5001"
GOOGLE_SOURCE = "accounts/123456/dataSources/104628"


def catalog_sync(dest_type: str) -> Sync:
    audience = Audience("catalog_test", CATALOG, "", ("product_id", *FIELDS), unique_columns=("product_id",),
                        layer="catalog")
    return Sync(name=f"catalog_test__{dest_type}", audience=audience, destination=f"t_{dest_type}", mode="mirror",
                key="product_id", identifiers={}, fields={name: name for name in FIELDS}, consent=None,
                guards={**DEFAULT_GUARDS, "max_remove_share": 0.5})


@pytest.fixture
def products(con):
    """A catalog table shaped like catalog_products; `add(n, start)` adds products p<i>, every third on sale."""
    con.execute("create schema if not exists catalog")
    con.execute(f"""create or replace table {CATALOG} (product_id varchar, title varchar, description varchar,
                    brand varchar, availability varchar, condition varchar, price decimal(12, 2), currency varchar,
                    sale_price decimal(12, 2), sale_starts_at timestamp, sale_ends_at timestamp, link varchar,
                    image_link varchar)""")

    def add(n: int, start: int = 0) -> None:
        con.execute(f"""insert into {CATALOG}
            select 'p' || i, 'Product ' || i, 'Product ' || i || ' (shoes)', 'Acme', 'in stock', 'new', 10 + i,
                   'EUR', case when i % 3 = 0 then 5 + i end,
                   case when i % 3 = 0 then timestamp '2026-11-01 00:00:00' end,
                   case when i % 3 = 0 then timestamp '2027-01-01 00:00:00' end,
                   'https://shop.test/p/' || i, 'https://shop.test/i/' || i || '.jpg'
            from range({start}, {start + n}) as t(i)""")

    return add


def held(base: str, dest_type: str) -> dict[str, dict]:
    """What the platform holds, by product id, in its own spelling."""
    state = sandbox_state(base, dest_type)
    if dest_type == "meta_catalog":
        return dict(state["catalogs"].get(META_CATALOG, {"items": {}})["items"])
    return {key.split("~", 2)[2]: value for key, value in state["data_sources"].get(GOOGLE_SOURCE, {}).items()}


def price_of(item: dict, dest_type: str, name: str = "price") -> str | None:
    """An item's price as "12.00 EUR", whichever platform holds it."""
    if dest_type == "meta_catalog":
        return item.get(name)
    money = item["productAttributes"].get({"price": "price", "sale_price": "salePrice"}[name])
    return f"{int(money['amountMicros']) / 1e6:.2f} {money['currencyCode']}" if money else None


def rejects(con, sync: Sync) -> dict[str, str]:
    return dict(con.execute("select row_key, reason from activation.sync_rejects where sync_name = ?",
                            [sync.name]).fetchall())


@pytest.mark.parametrize("dest_type", CATALOG_TYPES)
def test_the_catalog_is_mirrored_and_a_second_run_sends_only_what_changed(sandbox, con, products, dest_type,
                                                                        monkeypatch):
    products(6)
    con.execute(f"update {CATALOG} set availability = 'sold out' where product_id = 'p4'")
    sync, client = catalog_sync(dest_type), sandbox.client(dest_type)
    sent: list[tuple[str, list[str]]] = []
    send = client.send
    monkeypatch.setattr(client, "send", lambda op, batch, part=None:
                        sent.append((op, batch["_key"].to_list())) or send(op, batch, part))

    first = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (first.status, first.confirmed, first.rejected) == ("delivered_except_invalid", 5, 1), first
    assert "availability" in rejects(con, sync)["p4"]
    items = held(sandbox.base, dest_type)
    assert set(items) == {"p0", "p1", "p2", "p3", "p5"}  # never the refused one
    assert price_of(items["p3"], dest_type) == "13.00 EUR" and price_of(items["p3"], dest_type, "sale_price") == "8.00 EUR"
    assert price_of(items["p1"], dest_type, "sale_price") is None

    sent.clear()
    before = requests_served(sandbox.base, dest_type)
    second = run_sync(con, sync, client, policy=FAST_POLICY)  # p4 is still refused: only it is tried again
    assert [key for _, keys in sent for key in keys] == ["p4"] and second.confirmed == 0

    # A price change, a promotion that ended, a fixed product and a withdrawn one: only those travel.
    con.execute(f"update {CATALOG} set price = 99 where product_id = 'p1'")
    con.execute(f"update {CATALOG} set sale_price = null, sale_starts_at = null, sale_ends_at = null "
                "where product_id = 'p3'")
    con.execute(f"update {CATALOG} set availability = 'in stock' where product_id = 'p4'")
    con.execute(f"delete from {CATALOG} where product_id = 'p5'")
    sent.clear()
    third = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (third.status, third.confirmed, third.rejected) == ("success", 4, 0), third
    assert sorted(key for op, keys in sent if op == "upsert" for key in keys) == ["p1", "p3", "p4"]
    assert [key for op, keys in sent if op == "remove" for key in keys] == ["p5"]
    items = held(sandbox.base, dest_type)
    assert set(items) == {"p0", "p1", "p2", "p3", "p4"}
    assert price_of(items["p1"], dest_type) == "99.00 EUR"
    assert price_of(items["p3"], dest_type, "sale_price") is None  # the ended promotion left the platform
    assert rejects(con, sync) == {}

    before = requests_served(sandbox.base, dest_type)
    fourth = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (fourth.status, fourth.planned, fourth.sent) == ("success", 0, 0)
    assert requests_served(sandbox.base, dest_type) == before
    snapshot = con.execute("select row_key, identifiers from activation.sync_snapshots where sync_name = ? "
                           "order by row_key", [sync.name]).fetchall()
    assert snapshot == [(f"p{i}", "{}") for i in range(5)]  # keyed by product id; nothing personal kept


def test_meta_takes_five_thousand_item_requests_a_call(sandbox, con, products, monkeypatch):
    products(6_000)
    client = sandbox.client("meta_catalog")
    sizes = []
    send = client.send
    monkeypatch.setattr(client, "send", lambda op, batch, part=None: sizes.append(batch.height) or send(op, batch, part))
    result = run_sync(con, catalog_sync("meta_catalog"), client, policy=FAST_POLICY)
    assert (result.status, result.confirmed) == ("success", 6_000)
    assert sorted(sizes) == [1_000, 5_000]
    assert len(held(sandbox.base, "meta_catalog")) == 6_000


def test_meta_items_count_as_synced_only_once_meta_finished_the_batch(sandbox, con, products):
    """Meta took the items but the client gave up waiting for the batch to finish: nothing is marked
    synced, so the next run sends them again (an UPDATE by id changes nothing twice)."""
    products(3)
    sync = catalog_sync("meta_catalog")
    impatient = sandbox.client("meta_catalog", poll_timeout=0)
    result = run_sync(con, sync, impatient, policy=FAST_POLICY)
    assert (result.status, result.confirmed) == ("partial", 0), result
    assert con.execute("select count(*) from activation.sync_snapshots where sync_name = ?",
                       [sync.name]).fetchone()[0] == 0
    assert set(rejects(con, sync)) == {"p0", "p1", "p2"}

    again = run_sync(con, sync, sandbox.client("meta_catalog"), policy=FAST_POLICY)
    assert (again.status, again.confirmed) == ("success", 3), again
    assert set(held(sandbox.base, "meta_catalog")) == {"p0", "p1", "p2"}


def test_google_quota_is_waited_out(sandbox, con, products):
    products(12)
    sandbox.faults("google_merchant", rate_limits={"requests": 5, "window_seconds": 0.5})
    result = run_sync(con, catalog_sync("google_merchant"), sandbox.client("google_merchant"), policy=FAST_POLICY)
    assert (result.status, result.confirmed) == ("success", 12), result
    assert result.resent > 0  # refused with 429 RESOURCE_EXHAUSTED, sent again
    assert len(held(sandbox.base, "google_merchant")) == 12


@pytest.mark.parametrize("dest_type", CATALOG_TYPES)
def test_per_item_faults_are_rejects_and_the_token_is_nowhere(sandbox, con, products, dest_type, table_text):
    products(30)
    sandbox.faults(dest_type, row_reject_rate=0.2, seed=4)
    sync = catalog_sync(dest_type)
    result = run_sync(con, sync, sandbox.client(dest_type), policy=FAST_POLICY)
    refused = rejects(con, sync)
    assert result.status == "delivered_except_invalid" and 0 < len(refused) < 30, result
    assert set(held(sandbox.base, dest_type)).isdisjoint(refused)
    assert len(held(sandbox.base, dest_type)) + len(refused) == 30 == result.confirmed + result.rejected
    assert all("rejected by sandbox fault injection" in reason for reason in refused.values()), refused
    assert TOKENS[dest_type] not in table_text()


def test_sale_dates_and_enums_are_sent_as_each_platform_spells_them(sandbox, con, products):
    """A sale that starts later is sent with its dates, as Meta's interval and Google's Interval."""
    products(1)
    con.execute(f"""update {CATALOG} set sale_price = 7, sale_starts_at = ?, sale_ends_at = ?""",
                [datetime(2026, 12, 24, 9, 30), datetime(2026, 12, 27)])
    for dest_type in CATALOG_TYPES:
        run_sync(con, catalog_sync(dest_type), sandbox.client(dest_type), policy=FAST_POLICY)
    meta = held(sandbox.base, "meta_catalog")["p0"]
    google = held(sandbox.base, "google_merchant")["p0"]["productAttributes"]
    assert meta["sale_price_effective_date"] == "2026-12-24T09:30+00:00/2026-12-27T00:00+00:00"
    assert google["salePriceEffectiveDate"] == {"startTime": "2026-12-24T09:30+00:00",
                                                "endTime": "2026-12-27T00:00+00:00"}
    assert google["availability"] == "IN_STOCK" and google["condition"] == "NEW"


def test_forgetting_a_person_whose_id_is_a_product_id_leaves_the_product(sandbox, con, products):
    """The catalog's rows name no one: a customer id that equals a product id does not make the product
    theirs, so `attiva forget` neither deletes the product's record nor asks the catalog to erase it."""
    products(3)
    sync = catalog_sync("meta_catalog")
    run_sync(con, sync, sandbox.client("meta_catalog"), policy=FAST_POLICY)
    destinations = {"t_meta_catalog": make_config(sandbox.base, "meta_catalog")}
    request_erasure(con, "p1", Subject(customers=["p1"]), destinations, datetime.now(UTC).replace(tzinfo=None))
    kept = con.execute("select row_key from activation.sync_snapshots where sync_name = ? order by row_key",
                       [sync.name]).fetchall()
    assert [key for (key,) in kept] == ["p0", "p1", "p2"]
    assert con.execute("select count(*) from activation.erasure_destinations").fetchone()[0] == 0
    again = run_sync(con, sync, sandbox.client("meta_catalog"), policy=FAST_POLICY)
    assert (again.planned, again.sent) == (0, 0)
