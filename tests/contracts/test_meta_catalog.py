"""Meta's own SDK (facebook-business, its ProductCatalog class) against the sandbox's Catalog Batch API.

Attiva: `POST /{version}/{catalog_id}/items_batch` (item_type PRODUCT_ITEM, `requests` of UPDATE and
DELETE) then `GET /{version}/{catalog_id}/check_batch_request_status?handle=`; the SDK posts the same edge
form-encoded, with `requests` as a JSON string, and reads the handles and the status as Graph objects.
"""

from __future__ import annotations

import pytest
from facebook_business.adobjects.productcatalog import ProductCatalog
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from .conftest import TOKENS

CATALOG, VERSION = "120210000000000555", "v21.0"


def connect(sandbox, token: str) -> None:
    api = FacebookAdsApi.init(access_token=token, api_version=VERSION, crash_log=False)
    api._session.GRAPH = sandbox.root("meta_catalog")  # the SDK's fixed https://graph.facebook.com


def item(item_id: str, **changes) -> dict:
    return {"id": item_id, "title": "Trail Shoe", "description": "Trail Shoe (shoes)", "availability": "in stock",
            "condition": "new", "price": "89.90 EUR", "link": "https://shop.test/p/1",
            "image_link": "https://shop.test/i/1.jpg", **changes}


def status_of(catalog: ProductCatalog, handle: str) -> dict:
    return dict(catalog.get_check_batch_request_status(params={"handle": handle})[0])


def test_the_sdks_batch_is_applied_and_its_status_read_with_per_item_errors(sandbox):
    connect(sandbox, TOKENS["meta_catalog"])
    catalog = ProductCatalog(CATALOG)
    answer = catalog.create_items_batch(params={"item_type": "PRODUCT_ITEM", "allow_upsert": True, "requests": [
        {"method": "UPDATE", "data": item("p1")},
        {"method": "UPDATE", "data": item("p2", availability="sold out")},
    ]})
    [handle] = answer["handles"]
    assert status_of(catalog, handle)["status"] == "started"
    finished = status_of(catalog, handle)
    assert finished["status"] == "finished" and finished["errors_total_count"] == 1
    assert [(e["line"], e["id"]) for e in finished["errors"]] == [(1, "p2")]
    assert set(sandbox.state("meta_catalog")["catalogs"][CATALOG]["items"]) == {"p1"}

    answer = catalog.create_items_batch(params={"item_type": "PRODUCT_ITEM",
                                                "requests": [{"method": "DELETE", "data": {"id": "p1"}}]})
    status_of(catalog, answer["handles"][0])
    assert status_of(catalog, answer["handles"][0])["errors"] == []
    assert sandbox.state("meta_catalog")["catalogs"][CATALOG]["items"] == {}


def test_a_wrong_token_is_a_graph_error_the_sdk_reads(sandbox):
    connect(sandbox, "wrong-token")
    with pytest.raises(FacebookRequestError) as raised:
        ProductCatalog(CATALOG).create_items_batch(params={"item_type": "PRODUCT_ITEM",
                                                           "requests": [{"method": "UPDATE", "data": item("p1")}]})
    assert raised.value.api_error_code() == 190 and raised.value.http_status() == 401
