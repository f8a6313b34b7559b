"""Profile lookups and audience membership over real HTTP: every identifier type and spelling,
error bodies, keys and their fields, rate limits, consent, CORS, the OpenAPI document."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from activations.serve.openapi import DOCS_PATH, openapi_document
from tests.serve.conftest import LAURA, MARIO, PAOLA


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@pytest.mark.parametrize("id_type, value", [
    ("email", "mario.rossi@gmail.com"),
    ("email", "  Mario.Rossi@Gmail.com "),
    ("phone", "+39 333 123 4567"),
    ("phone", "333-1234567"),
    ("phone", "0039 3331234567"),
    ("customer_id", MARIO),
    ("customer_id", f" {MARIO}"),
    ("device_id", "D1"),
    ("shop_customer_id", "S1"),
])
def test_a_visitor_is_found_by_every_identifier_and_spelling(api, id_type, value):
    answer = api.get(f"/v1/profiles/{id_type}/{quoted(value)}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["customer_id"] == MARIO and body["personalized"] is True
    assert body["traits"]["first_name"] == "Mario" and body["traits"]["email"] == "mario.rossi@gmail.com"
    assert body["traits"]["phone"] == "+393331234567"
    assert "champions" in body["audiences"]
    assert [p["product_id"] for p in body["promotions"]] == ["P1"]  # his favourite, 20% off until Nov 30
    assert body["promotions"][0]["current_price"] < body["promotions"][0]["price"]


def test_recommendations_come_with_their_products(api):
    body = api.get(f"/v1/profiles/customer_id/{PAOLA}").json()
    assert [(r["rank"], r["product_id"], r["product_name"]) for r in body["recommendations"]] == [
        (1, "P3", "Tazza Espresso")]
    assert body["recommendations"][0]["reason"] == "goes_with_purchases"


def test_an_unknown_visitor_gets_404_with_a_stable_error_body(api):
    answer = api.get("/v1/profiles/email/nobody%40example.it")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "no customer with this email"}}
    assert api.get("/v1/profiles/email/not-an-email").json()["error"]["code"] == "not_found"
    wrong = api.get("/v1/profiles/fax/123")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "unknown_id_type"


def test_an_identifier_shared_by_several_people_is_ambiguous(api):
    answer = api.get("/v1/profiles/email/info%40acme.it")  # a role mailbox of three contacts
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "ambiguous_identifier"


def test_audience_membership(api):
    assert api.get("/v1/audiences/champions/members/email/mario.rossi%40gmail.com").json()["member"] is True
    assert api.get("/v1/audiences/aud_champions/members/device_id/D1").json()["member"] is True
    assert api.get(f"/v1/audiences/champions/members/customer_id/{PAOLA}").json()["member"] is False
    unknown = api.get("/v1/audiences/vip/members/device_id/D1")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_audience"
    assert api.get("/v1/audiences/champions/members/device_id/NOPE").json()["error"]["code"] == "not_found"


def test_a_browser_key_sees_no_email_or_phone(api):
    body = api.as_key("browser-key").get("/v1/profiles/device_id/D1").json()
    assert body["traits"] == {"first_name": "Mario"}
    assert "mario.rossi@gmail.com" not in json.dumps(body) and "3331234567" not in json.dumps(body)
    assert body["promotions"] and body["audiences"] == []  # a storefront needs no segments


def test_keys_are_required_and_limited_to_their_endpoints(api):
    for client in (api.as_key(None), api.as_key("made-up-key")):
        answer = client.get("/v1/profiles/device_id/D1")
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
    refused = api.as_key("collector-key").get("/v1/profiles/device_id/D1")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    x_api_key = api.as_key(None).get("/v1/profiles/device_id/D1", headers={"X-Api-Key": "server-key"})
    assert x_api_key.status_code == 200


def test_rate_limit_answers_429_with_retry_after(api):
    slow = api.as_key("slow-key")  # 0.5 requests/s, burst 2
    codes = [slow.get("/v1/profiles/device_id/D1") for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[2].json()["error"]["code"] == "rate_limited"
    assert int(codes[2].headers["Retry-After"]) >= 1
    assert api.get("/v1/profiles/device_id/D1").status_code == 200  # other keys are not affected


def test_no_personalization_without_profiling_consent(api, consented_warehouse):
    import duckdb

    with duckdb.connect(str(consented_warehouse), read_only=True) as con:
        laura_in = [t for (t,) in con.execute("""select table_name from information_schema.tables
                                                   where table_schema = 'audiences'""").fetchall()
                     if con.execute(f"select count(*) from audiences.{t} where customer_id = ?", [LAURA]).fetchone()[0]]
    assert laura_in, "Laura should belong to an audience for this test to mean something"
    body = api.get("/v1/profiles/email/laura.m%40example.it").json()
    assert body["personalized"] is False and body["reason"] == "no_profiling_consent"
    assert body["traits"] == {} and body["audiences"] == [] and body["recommendations"] == []
    assert body["promotions"] == []
    for table in laura_in:
        member = api.get(f"/v1/audiences/{table}/members/customer_id/{LAURA}").json()
        assert member["member"] is False and member["personalized"] is False


def test_cors_lets_the_configured_origin_call_from_a_browser(api):
    preflight = api.session.options(api.base_url + "/v1/profiles/device_id/D1", timeout=10, headers={
        "Origin": "https://shop.example.it", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example.it"
    other = api.session.options(api.base_url + "/v1/profiles/device_id/D1", timeout=10, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert other.status_code == 400

    # The lookup itself from that page: the same answer as without an Origin, with the CORS header.
    direct = api.get("/v1/profiles/device_id/D1")
    from_page = api.get("/v1/profiles/device_id/D1", headers={"Origin": "https://shop.example.it"})
    assert from_page.status_code == 200 and from_page.json() == direct.json()
    assert from_page.headers["access-control-allow-origin"] == "https://shop.example.it"
    assert "access-control-allow-origin" not in direct.headers
    member = api.get("/v1/audiences/champions/members/device_id/D1", headers={"Origin": "https://shop.example.it"})
    assert member.json()["member"] is True and member.headers["access-control-allow-origin"]
    refused = api.as_key(None).get("/v1/profiles/device_id/D1", headers={"Origin": "https://shop.example.it"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"


def test_the_openapi_document_is_served_and_committed(api):
    served = api.get("/openapi.json").json()
    assert served == openapi_document()
    assert json.loads(DOCS_PATH.read_text()) == served, \
        "docs/openapi.json is stale: python -m activations.serve.openapi"
    assert {"/v1/profiles/{id_type}/{value}", "/v1/profiles/me", "/v1/audiences/{name}/members/{id_type}/{value}",
            "/v1/audiences/{name}/members/me", "/v1/events", "/v1/messages/me", "/v1/messages/{id_type}/{value}"
            } == set(served["paths"])


def test_the_demo_page_carries_a_browser_key(api):
    page = api.as_key(None).get("/")
    assert page.status_code == 200 and "__DEMO_KEY__" not in page.text
    key = page.text.split('window.ATTIVA_KEY = "')[1].split('"')[0]
    body = api.as_key(key).get("/v1/profiles/device_id/D1").json()
    assert body["traits"]["first_name"] == "Mario" and "email" not in body["traits"]
    assert api.as_key(key).get("/v1/profiles/email/mario.rossi%40gmail.com").status_code == 403
    assert api.as_key(None).get("/storefront.js").status_code == 200


def test_before_the_first_snapshot_lookups_answer_503(tmp_path):
    from activations.serve.app import create_app, running_server
    from activations.serve.keys import KeysConfig
    from tests.serve.conftest import KEYS, NOW, Client

    app = create_app(KeysConfig(list(KEYS.values())), tmp_path / "serving", tmp_path / "landing", clock=lambda: NOW)
    with running_server(app) as url:
        answer = Client(url).get("/v1/profiles/device_id/D1")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "no_snapshot"
    assert answer.headers["Retry-After"] == "5"


def test_raw_spellings_in_the_path_find_the_visitor(api):
    # What a caller that does not percent-encode sends: a literal @ and + stay themselves in a path.
    for path in ("/v1/profiles/email/Mario.Rossi@Gmail.com", "/v1/profiles/phone/+393331234567",
                 "/v1/profiles/phone/+39 333 123 4567", "/v1/profiles/phone/+39-333-123.4567"):
        answer = api.get(path)
        assert answer.status_code == 200 and answer.json()["customer_id"] == MARIO, (path, answer.text)


@pytest.mark.parametrize("id_type, value", [
    ("email", "MARIO.ROSSI@gmail.com"), ("phone", "3331234567"), ("customer_id", MARIO), ("device_id", "D1"),
    ("shop_customer_id", "S1"),
])
def test_membership_by_every_identifier_type(api, id_type, value):
    answer = api.get(f"/v1/audiences/champions/members/{id_type}/{quoted(value)}")
    assert answer.status_code == 200 and answer.json()["member"] is True


def test_a_key_sees_only_the_fields_it_lists(api):
    narrow = api.as_key("narrow-key")  # fields: first_name, recommendations; endpoint: profiles
    body = narrow.get(f"/v1/profiles/customer_id/{PAOLA}").json()
    assert body["personalized"] is True and body["traits"] == {"first_name": "Paola"}
    assert body["customer_id"] is None  # not listed: not even the id it was asked by
    assert [r["product_id"] for r in body["recommendations"]] == ["P3"]
    assert body["audiences"] == [] and body["promotions"] == []  # her favourite is on promotion, but not for this key
    full = api.get(f"/v1/profiles/customer_id/{PAOLA}").json()
    assert full["promotions"] and set(full["traits"]) > {"first_name", "email", "lead_score"}


@pytest.mark.parametrize("method, path", [
    ("get", "/v1/audiences/champions/members/device_id/D1"),
    ("post", "/v1/events"),
])
def test_every_endpoint_needs_a_key_allowed_to_call_it(api, method, path):
    kwargs = {"json": {"event_id": "k1", "event_type": "page_view", "occurred_at": "2026-11-20T11:00:00Z",
                       "anonymous_id": "D1"}} if method == "post" else {}
    missing = getattr(api.as_key(None), method)(path, **kwargs)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    refused = getattr(api.as_key("narrow-key"), method)(path, **kwargs)
    assert refused.status_code == 403 and "narrow" in refused.json()["error"]["message"]


def test_revoking_profiling_consent_stops_personalization_at_the_next_snapshot(api, serving, consented_warehouse,
                                                                              tmp_path):
    import duckdb

    from activations.serve.store import build_serving_store
    from tests.serve.conftest import copy_warehouse

    assert api.get("/v1/profiles/device_id/D1").json()["personalized"] is True
    revoked = copy_warehouse(consented_warehouse, tmp_path / "revoked.duckdb", profiling=False)
    with duckdb.connect(str(revoked)) as con:  # what a consent record revoking profiling leads dbt to
        con.execute("update marts.customers set consent_profiling = false where customer_id = ?", [MARIO])
    build_serving_store(revoked, serving)
    body = api.get("/v1/profiles/device_id/D1").json()
    assert body["personalized"] is False and body["reason"] == "no_profiling_consent"
    assert body["traits"] == {} and body["audiences"] == [] and body["recommendations"] == []
    assert body["promotions"] == [] and "Mario" not in json.dumps(body)
    member = api.get("/v1/audiences/champions/members/device_id/D1").json()
    assert member["member"] is False and member["personalized"] is False
