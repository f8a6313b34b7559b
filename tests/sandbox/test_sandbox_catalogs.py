"""The sandbox's product catalogs: Meta's Catalog Batch API (items_batch, check_batch_request_status) and
Google's Merchant API productInputs, with their contracts, per-item errors, auth, limits and restarts."""

from __future__ import annotations

from pathlib import Path

import requests
from sandbox_helpers import TOKENS, auth, set_faults, state

from sandbox import server

CATALOG = "555"
SOURCE = "accounts/42/dataSources/7"


def item(item_id: str, **changes) -> dict:
    return {"id": item_id, "title": "Trail Shoe", "description": "Trail Shoe (shoes)", "availability": "in stock",
            "condition": "new", "price": "89.90 EUR", "link": "https://shop.test/p/1",
            "image_link": "https://shop.test/i/1.jpg", **changes}


def items_batch(url: str, requests_: list, **extra) -> requests.Response:
    return requests.post(f"{url}/meta_catalog/v21.0/{CATALOG}/items_batch", timeout=10, **auth("meta_catalog"),
                         json={"item_type": "PRODUCT_ITEM", "requests": requests_, **extra})


def batch_status(url: str, handle: str) -> dict:
    answer = requests.get(f"{url}/meta_catalog/v21.0/{CATALOG}/check_batch_request_status", timeout=10,
                          params={"handle": handle}, **auth("meta_catalog"))
    assert answer.status_code == 200, answer.text
    return answer.json()["data"][0]


def finished(url: str, answer: requests.Response) -> dict:
    """The batch's status once Meta finished it: started at the first check, finished at the next."""
    assert answer.status_code == 200, answer.text
    handle = answer.json()["handles"][0]
    assert batch_status(url, handle)["status"] == "started"
    status = batch_status(url, handle)
    assert status["status"] == "finished"
    return status


def held(url: str) -> dict:
    return state(url, "meta_catalog")["catalogs"].get(CATALOG, {"items": {}})["items"]


def test_meta_items_are_created_updated_and_deleted_with_per_item_errors(sandbox: str) -> None:
    status = finished(sandbox, items_batch(sandbox, [
        {"method": "CREATE", "data": item("p1", sale_price="69.90 EUR",
                                          sale_price_effective_date="2026-12-01T00:00+00:00/2026-12-31T23:59+00:00")},
        {"method": "UPDATE", "data": item("p2")},  # allow_upsert: an UPDATE creates
        {"method": "CREATE", "data": item("p3", price=None)},
        {"method": "CREATE", "data": item("p4", availability="sold out")},
        {"method": "CREATE", "data": item("p5", price="89.90")},
    ]))
    assert {(e["line"], e["id"]) for e in status["errors"]} == {(2, "p3"), (3, "p4"), (4, "p5")}
    assert status["errors_total_count"] == 3
    assert "price" in status["errors"][0]["message"] and "availability" in status["errors"][1]["message"]
    assert set(held(sandbox)) == {"p1", "p2"}

    # An UPDATE changes the fields it carries; an empty value clears one; a DELETE of nothing is fine.
    status = finished(sandbox, items_batch(sandbox, [
        {"method": "UPDATE", "data": {"id": "p1", "price": "79.90 EUR", "sale_price": "",
                                      "sale_price_effective_date": ""}},
        {"method": "DELETE", "data": {"id": "p2"}},
        {"method": "DELETE", "data": {"id": "never"}},
        {"method": "CREATE", "data": item("p1")},  # already there
    ]))
    assert [(e["line"], e["id"]) for e in status["errors"]] == [(3, "p1")]
    p1 = held(sandbox)["p1"]
    assert p1["price"] == "79.90 EUR" and "sale_price" not in p1 and p1["title"] == "Trail Shoe"
    assert set(held(sandbox)) == {"p1"}

    answer = items_batch(sandbox, [{"method": "UPDATE", "data": {"id": "p9", "price": "1.00 EUR"}}], allow_upsert=False)
    assert "allow_upsert" in finished(sandbox, answer)["errors"][0]["message"]


def test_meta_refuses_a_malformed_batch_whole(sandbox: str) -> None:
    too_many = [{"method": "UPDATE", "data": item(f"p{i}")} for i in range(5_001)]
    for body in ([{"method": "UPSERT", "data": item("p1")}], [{"method": "CREATE", "data": {"title": "x"}}], too_many):
        answer = items_batch(sandbox, body)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 100, answer.text
    answer = requests.post(f"{sandbox}/meta_catalog/v21.0/{CATALOG}/items_batch", timeout=10, **auth("meta_catalog"),
                           json={"item_type": "HOTEL", "requests": [{"method": "CREATE", "data": item("p1")}]})
    assert answer.status_code == 400
    assert held(sandbox) == {}
    unknown = requests.get(f"{sandbox}/meta_catalog/v21.0/{CATALOG}/check_batch_request_status", timeout=10,
                           params={"handle": "nope"}, **auth("meta_catalog"))
    assert unknown.status_code == 400


def test_meta_catalog_auth_and_throttling_as_graph_errors(sandbox: str) -> None:
    bad = requests.post(f"{sandbox}/meta_catalog/v21.0/{CATALOG}/items_batch", timeout=10,
                        headers={"Authorization": "Bearer wrong"}, json={"item_type": "PRODUCT_ITEM", "requests": []})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == 190
    set_faults(sandbox, destination="meta_catalog", rate_limit_rate=1.0)
    throttled = items_batch(sandbox, [{"method": "CREATE", "data": item("p1")}])
    assert throttled.status_code == 400 and throttled.json()["error"]["code"] == 17
    assert held(sandbox) == {}


def insert(url: str, body: dict, source: str = SOURCE, **kwargs) -> requests.Response:
    return requests.post(f"{url}/google_merchant/products/v1/accounts/42/productInputs:insert", timeout=10,
                         params={"dataSource": source}, json=body, **{**auth("google_merchant"), **kwargs})


def product(offer: str, **changes) -> dict:
    attributes = {"title": "Trail Shoe", "link": "https://shop.test/p/1", "imageLink": "https://shop.test/i/1.jpg",
                  "availability": "IN_STOCK", "condition": "NEW",
                  "price": {"amountMicros": "89900000", "currencyCode": "EUR"}}
    return {"offerId": offer, "contentLanguage": "it", "feedLabel": "IT",
            "productAttributes": {**attributes, **changes}}


def inputs(url: str) -> dict:
    return state(url, "google_merchant")["data_sources"].get(SOURCE, {})


def test_google_inserts_replace_and_deletes_by_name(sandbox: str) -> None:
    answer = insert(sandbox, product("p1", salePrice={"amountMicros": 69_900_000, "currencyCode": "EUR"},
                                     salePriceEffectiveDate={"startTime": "2026-12-01T00:00+00:00",
                                                             "endTime": "2026-12-31T00:00+00:00"}))
    assert answer.status_code == 200 and answer.json()["name"] == "accounts/42/productInputs/it~IT~p1"
    assert insert(sandbox, product("p1", title="Trail Shoe 2")).status_code == 200  # replaces, sale and all
    assert inputs(sandbox)["it~IT~p1"]["productAttributes"].get("salePrice") is None
    assert inputs(sandbox)["it~IT~p1"]["productAttributes"]["title"] == "Trail Shoe 2"
    url = f"{sandbox}/google_merchant/products/v1/accounts/42/productInputs/it~IT~p1"
    deleted = requests.delete(url, params={"dataSource": SOURCE}, timeout=10, **auth("google_merchant"))
    assert deleted.status_code == 200 and inputs(sandbox) == {}
    again = requests.delete(url, params={"dataSource": SOURCE}, timeout=10, **auth("google_merchant"))
    assert again.status_code == 404 and again.json()["error"]["status"] == "NOT_FOUND"


def test_google_names_every_field_violation(sandbox: str) -> None:
    cases = {
        "product_attributes.price": product("p1", price=None),
        "product_attributes.price.currency_code": product("p1", price={"amountMicros": "1000000", "currencyCode": "euro"}),
        "product_attributes.availability": product("p1", availability="in stock"),
        "product_attributes.condition": product("p1", condition="MINT"),
        "product_attributes.image_link": product("p1", imageLink="shop.test/i.jpg"),
        "product_attributes.sale_price_effective_date": product(
            "p1", salePriceEffectiveDate={"startTime": "2026-12-31T00:00Z", "endTime": "2026-12-01T00:00Z"}),
        "offer_id": product("x" * 51),
    }
    for field, body in cases.items():
        if body["productAttributes"].get("price") is None:
            del body["productAttributes"]["price"]
        answer = insert(sandbox, body)
        assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT", field
        violations = answer.json()["error"]["details"][1]["fieldViolations"]
        assert field in [v["field"] for v in violations], (field, violations)
    assert insert(sandbox, product("p1"), source="accounts/99/dataSources/7").status_code == 400
    assert inputs(sandbox) == {}


def test_google_merchant_auth_and_quota(sandbox: str) -> None:
    assert insert(sandbox, product("p1"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    set_faults(sandbox, destination="google_merchant", rate_limits={"requests": 1, "window_seconds": 60})
    assert insert(sandbox, product("p1")).status_code == 200
    throttled = insert(sandbox, product("p2"))
    assert throttled.status_code == 429 and throttled.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "quota/request_rate_too_high" in throttled.json()["error"]["message"]


def test_catalogs_survive_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        finished(url, items_batch(url, [{"method": "CREATE", "data": item("p1")}]))
        insert(url, product("p1"))
        before = (held(url), inputs(url))
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        assert (held(url), inputs(url)) == before != ({}, {})
