"""The personalization API attacked as a visitor of a public web page would: with the browser key the
page prints, from curl, from other addresses. Each test plays one attack of issue 21 (docs/security.md)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

import pytest

from activations.serve.identity import sign_identity
from tests.serve.conftest import IDENTITY_SECRET, MARIO, PAOLA, Client


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def token(email: str, secret: str = IDENTITY_SECRET, lifetime: int = 600, now: float | None = None) -> str:
    return sign_identity("email", email, secret, lifetime, now)


def landed(landing: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(landing.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def event(event_id: str, **fields) -> dict:
    return {"event_id": event_id, "event_type": "add_to_cart", "occurred_at": "2026-11-20T11:30:00Z",
            "anonymous_id": "attacker-device", "product_id": "P5", "quantity": 1, **fields}


def raw_request(base_url: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None = None,
                source: str = "127.0.0.1") -> tuple[int, dict]:
    """One request from the loopback address `source` (127.0.0.2 is another machine to the server),
    with the headers exactly as given (repeated ones too)."""
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10, source_address=(source, 0))
    try:
        conn.putrequest(method, path)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        conn.close()


# ---- 1. any visitor could look people up -----------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/v1/profiles/email/paola.sala%40libero.it",
    "/v1/profiles/phone/%2B393331234567",
    f"/v1/profiles/customer_id/{MARIO}",
    "/v1/profiles/shop_customer_id/S1",
    "/v1/audiences/champions/members/email/mario.rossi%40gmail.com",
])
def test_a_browser_key_cannot_look_anyone_up_by_email_phone_or_id(api, path):
    for origin in ({}, {"Origin": "https://shop.example.it"}):  # curl and the page alike
        answer = api.as_key("browser-key").get(path, headers=origin)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "forbidden" and "server key" in answer.json()["error"]["message"]
    assert api.get(path).status_code == 200  # a server key still may


def test_to_a_browser_key_unknown_no_consent_and_shared_look_the_same(api):
    browser = api.as_key("browser-key")
    answers = [browser.get("/v1/profiles/me", headers={"X-Attiva-Identity": token(email)})
               for email in ("nobody@example.it", "laura.m@example.it", "info@acme.it")]  # unknown, no consent, shared
    answers.append(browser.get("/v1/profiles/device_id/NOPE"))
    assert {a.status_code for a in answers} == {200}
    bodies = [{k: v for k, v in a.json().items() if k != "snapshot"} for a in answers]
    assert all(b == bodies[0] for b in bodies), bodies
    assert bodies[0] == {"customer_id": None, "personalized": False, "traits": {}, "audiences": [],
                         "recommendations": [], "promotions": []}
    memberships = [browser.get("/v1/audiences/champions/members/me", headers={"X-Attiva-Identity": token(e)}).json()
                   for e in ("nobody@example.it", "laura.m@example.it", "info@acme.it")]
    assert all(m["member"] is False and m["personalized"] is False for m in memberships)
    # A server key still learns the difference: it is the business's own backend.
    assert [api.get(f"/v1/profiles/email/{quoted(e)}").status_code
            for e in ("nobody@example.it", "laura.m@example.it", "info@acme.it")] == [404, 200, 409]


def test_a_browser_key_sees_what_a_storefront_shows_and_nothing_more(api):
    body = api.as_key("browser-key").get("/v1/profiles/device_id/D1").json()
    assert body["personalized"] is True and body["traits"] == {"first_name": "Mario"}
    assert body["customer_id"] is None and body["audiences"] == []
    assert [p["product_id"] for p in body["promotions"]] == ["P1"]
    text = json.dumps(body)
    for secret in ("lead_score", "consent", "orders_count", "lifecycle_stage", "Milano", MARIO, "champions"):
        assert secret not in text


def test_the_visitor_itself_is_found_by_a_token_its_shop_signed(api):
    browser = api.as_key("browser-key")
    found = browser.get("/v1/profiles/me", headers={"X-Attiva-Identity": token(" Paola.Sala@Libero.it")})
    assert found.status_code == 200 and found.json()["traits"] == {"first_name": "Paola"}
    assert [r["product_id"] for r in found.json()["recommendations"]] == ["P3"]
    genuine = token("paola.sala@libero.it")
    refused = {
        "forged with another secret": token("paola.sala@libero.it", secret="guessed"),
        "expired": token("paola.sala@libero.it", lifetime=60, now=time.time() - 120),
        "too long-lived": token("paola.sala@libero.it", lifetime=30 * 86400),
        "email swapped": genuine.replace("paola.sala@libero.it", "mario.rossi@gmail.com"),
        "expiry stretched": genuine.replace(genuine.split(":")[2], str(int(genuine.split(":")[2]) + 3600)),
        "missing": "",
    }
    for why, bad in refused.items():
        answer = browser.get("/v1/profiles/me", headers={"X-Attiva-Identity": bad} if bad else {})
        assert answer.status_code == 401, why
        assert answer.json()["error"]["code"] == "invalid_identity_token", why


def test_the_demo_key_exists_only_in_demo_mode(serving, landing):
    from activations.cli import main
    from activations.serve.app import create_app, running_server
    from activations.serve.keys import KeysConfig
    from tests.serve.conftest import KEYS

    with running_server(create_app(KeysConfig(list(KEYS.values())), serving, landing)) as url:
        page = Client(url, None).get("/")
        signed = Client(url, None).post("/demo/sign-in", json={"email": "mario.rossi@gmail.com"})
    assert page.status_code == 404 and "ATTIVA_KEY" not in page.text
    assert signed.status_code == 404
    # The demo signs in anyone: `attiva serve --demo` refuses to face a network.
    assert main(["serve", "--demo", "--host", "0.0.0.0", "--keys", str(landing / "none.yml")]) == 2


# ---- 2. events made the API an email relay and merged people ---------------------------------------

def test_browser_events_are_untrusted_unless_signed_and_signed_ones_carry_only_their_identity(api, landing):
    browser = api.as_key("browser-key")
    sent = browser.post("/v1/events", json=[event("b1", email="paola.sala@libero.it"),
                                            event("b2", trust="server")])  # a client cannot vouch for itself
    assert [r["status"] for r in sent.json()["results"]] == ["accepted", "rejected"]
    assert "unknown field(s): trust" in sent.json()["results"][1]["error"]["message"]

    signed = {"X-Attiva-Identity": token("Paola.Sala@libero.it")}
    answer = browser.post("/v1/events", headers=signed, json=[
        event("s1", anonymous_id="paola-phone"),
        event("s2", anonymous_id="paola-phone", email="paola.sala@libero.it"),
        event("s3", anonymous_id="paola-phone", email="mario.rossi@gmail.com"),  # someone else's email
        event("s4", anonymous_id="paola-phone", phone="+39 333 765 4321"),  # an identifier the token does not sign
    ])
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "accepted", "rejected", "rejected"]
    forged = browser.post("/v1/events", headers={"X-Attiva-Identity": token("paola.sala@libero.it", "guessed")},
                          json=event("f1"))
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_identity_token"
    api.post("/v1/events", json=event("v1", anonymous_id="D1", user_id="S1"))  # the shop's server

    rows = {r["event_id"]: r for r in landed(landing)}
    assert set(rows) == {"b1", "s1", "s2", "v1"}
    assert rows["b1"]["trust"] == "browser" and rows["v1"]["trust"] == "server"
    assert rows["s1"]["trust"] == rows["s2"]["trust"] == "signed"
    assert rows["s1"]["email"] == "Paola.Sala@libero.it" and "phone" not in rows["s1"]


def test_untrusted_events_neither_merge_people_nor_fire_their_triggers(api, landing, handcrafted_warehouse, tmp_path):
    """The attack end to end, on a used warehouse: browser-key events through the next ingestion and
    (incremental) dbt build. Before, the add_to_cart gave Paola an abandoned cart of the attacker's
    product (an email the next messaging pass sent) and the identify merged Paola with Giulia."""
    import shutil

    import duckdb

    from tests.conftest import HANDCRAFTED_AS_OF, build_from_landing
    from tests.dbt.test_handcrafted import customer_of

    browser = api.as_key("browser-key")
    attack = [
        event("x-cart", email="paola.sala@libero.it", product_id="P5"),
        event("x-merge", event_type="identify", email="paola.sala@libero.it", phone="333-765-4321",
              product_id=None, quantity=None),
        event("x-account", anonymous_id="attacker-2", user_id="S6", product_id="P5"),
    ]
    assert browser.post("/v1/events", json=attack).json()["accepted"] == 3
    # Trusted evidence still counts: a device its shop login linked (D1 is Mario's), and a signed event.
    assert browser.post("/v1/events", json=event("ok-device", anonymous_id="D1", product_id="P5")).json()["accepted"]
    assert browser.post("/v1/events", headers={"X-Attiva-Identity": token("davide.russo@example.it")},
                        json=event("ok-signed", anonymous_id="davide-laptop", product_id="P5")).json()["accepted"]

    warehouse = tmp_path / "used.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)  # built once already: the next run is incremental
    build_from_landing(landing, warehouse, HANDCRAFTED_AS_OF)  # the landing folder the API wrote to
    people = customer_of(warehouse)  # also asserts each person's records still resolve to one customer
    assert len(set(people.values())) == len(people), "the identify event merged two people"
    paola, davide = people["paola"], people["davide"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        carts = con.execute("select customer_id, cart_products_json from triggers.trg_abandoned_cart").fetchall()
        events = dict(con.execute("select event_id, customer_id from marts.events "
                                  "where event_id in ('x-cart', 'x-account', 'ok-device', 'ok-signed')").fetchall())
        devices = con.execute("select identifier_value from marts.customer_identifiers "
                              "where identifier_type = 'device_id'").fetchall()
    assert events["x-cart"] is None and events["x-account"] is None  # anonymous: tied to the attacker's device only
    assert not [c for c, products in carts if c == paola and "P5" in products], "Paola would get the attacker's cart"
    assert events["ok-device"] == MARIO and events["ok-signed"] == davide
    assert [c for c, products in carts if c == MARIO and "P5" in products]
    assert [c for c, products in carts if c == davide and "P5" in products]
    assert ("attacker-device",) not in devices and ("attacker-2",) not in devices and ("davide-laptop",) in devices


# ---- 5. rate limits per key and client; failures limited ------------------------------------------

def test_one_visitor_flooding_the_shared_browser_key_does_not_starve_the_others(api):
    auth = [("Authorization", "Bearer slow-browser-key")]  # 1 request/s, burst 3
    flood = [raw_request(api.base_url, "GET", "/v1/profiles/device_id/D1", auth, source="127.0.0.2")[0]
             for _ in range(10)]
    assert flood.count(429) >= 6
    others = [raw_request(api.base_url, "GET", "/v1/profiles/device_id/D1", auth, source=f"127.0.0.{i}")[0]
              for i in range(3, 8)]
    assert others == [200] * 5


def test_failed_authentications_are_limited_per_address(api):
    tries = [raw_request(api.base_url, "GET", "/v1/profiles/device_id/D1", [("Authorization", f"Bearer guess-{i}")],
                         source="127.0.0.9") for i in range(30)]
    codes = [status for status, _ in tries]
    assert codes[:20] == [401] * 20 and codes[20:].count(429) >= 8  # one may refill while they run
    assert tries[-1][1]["error"]["code"] == "rate_limited"
    # The right key from that address still works, and other addresses are not affected.
    assert raw_request(api.base_url, "GET", "/v1/profiles/device_id/D1", [("Authorization", "Bearer server-key")],
                       source="127.0.0.9")[0] == 200
    assert raw_request(api.base_url, "GET", "/v1/profiles/device_id/D1", [("Authorization", "Bearer nope")],
                       source="127.0.0.10")[0] == 401


# ---- 6, 7, 9, 10: the low ones --------------------------------------------------------------------

def test_an_event_nested_a_thousand_levels_deep_is_refused_with_its_reason(api, landing):
    body = b'{"event_id":"deep","event_type":"page_view","occurred_at":"2026-11-20T11:00:00Z","anonymous_id":"D1",' \
           b'"url":' + b"[" * 1000 + b"]" * 1000 + b"}"
    answer = api.post("/v1/events", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "nested too deeply" in answer.json()["results"][0]["error"]["message"]
    assert landed(landing) == []


def test_identifiers_are_capped_at_320_characters(api, landing):
    long = "x" * 321
    for path in (f"/v1/profiles/device_id/{long}", f"/v1/profiles/email/{long}%40example.it"):
        answer = api.get(path)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_identifier"
    refused = api.post("/v1/events", json=event("long", anonymous_id=long))
    assert refused.status_code == 400 and "anonymous_id longer than 320" in refused.json()["results"][0]["error"]["message"]
    assert api.get("/v1/profiles/device_id/" + "x" * 320).status_code == 404  # at the cap: looked up, not found


@pytest.mark.parametrize("origin", [[], [("Origin", "https://shop.example.it")]])
def test_a_request_with_two_credentials_is_refused(api, origin):
    for second in (("Authorization", "Bearer server-key"), ("X-Api-Key", "server-key")):
        status, body = raw_request(api.base_url, "GET", "/v1/profiles/email/mario.rossi%40gmail.com",
                                   [("Authorization", "Bearer browser-key"), second, *origin])
        assert status == 400 and body["error"]["code"] == "invalid_request"


def test_unknown_audience_lists_the_audiences_only_to_keys_that_may_see_them(api):
    hidden = api.as_key("browser-key").get("/v1/audiences/vip/members/device_id/D1")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "unknown_audience"
    assert "champions" not in hidden.text and "(known:" not in hidden.text
    shown = api.get("/v1/audiences/vip/members/device_id/D1")
    assert "champions" in shown.json()["error"]["message"]


# ---- what held: keep it so -------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["' or '1'='1", "x\" or 1=1 --", "..%2F..%2F..%2Fetc%2Fpasswd", "%00", "D1%27--"])
def test_injection_and_path_tricks_find_nobody(api, value):
    answer = api.get(f"/v1/profiles/device_id/{value}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert api.as_key("browser-key").get(f"/v1/profiles/device_id/{value}").json()["personalized"] is False


# ---- 3. unsubscribe links: a page that answers them, with the suppression it promises ---------------

def test_an_unsubscribe_link_opens_a_preference_page_and_one_click_suppresses(api, landing, tmp_path, monkeypatch):
    import duckdb

    from activations.ingest import load_landing
    from activations.messaging import feedback, links
    from activations.messaging.feedback import email_sha256

    monkeypatch.delenv("ATTIVA_UNSUBSCRIBE_SECRET", raising=False)  # links to this machine: the sandbox's secret
    monkeypatch.delenv("ATTIVA_UNSUBSCRIBE_BASE_URL", raising=False)
    url = links.unsubscribe_url(api.base_url + "/unsubscribe", PAOLA, "abandoned_cart", links.unsubscribe_secret())
    browser = Client(api.base_url, None)
    page = browser.session.get(url, timeout=10)
    assert page.status_code == 200 and "p***@libero.it" in page.text and 'id="unsubscribe"' in page.text
    assert "paola.sala@libero.it" not in page.text and page.headers["Cache-Control"] == "no-store"
    assert list(landing.rglob("*.jsonl")) == []  # opening the page (a mail scanner does) changes nothing

    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
    forged = links.unsubscribe_token(MARIO, "abandoned_cart", "guessed-secret")
    expired = links.unsubscribe_token(MARIO, "abandoned_cart", links.unsubscribe_secret(),
                                      now=time.time() - links.TOKEN_LIFETIME - 1)
    for bad in (forged, expired, token[:-3]):
        refused = browser.session.post(f"{api.base_url}/unsubscribe?token={bad}", timeout=10)
        assert refused.status_code == 400 and "not valid or has expired" in refused.text
    assert list(landing.rglob("*.jsonl")) == []

    done = browser.session.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)  # RFC 8058 one-click
    assert done.status_code == 200 and "no more marketing email" in done.text

    # What the page promised: after ingestion, the next messaging pass suppresses the address.
    warehouse = tmp_path / "unsubscribed.duckdb"
    report = load_landing(landing, warehouse)
    assert not report.failed_files and not report.rows_quarantined, str(report)
    with duckdb.connect(str(warehouse)) as con:
        feedback.refresh_suppressions(con)
        listed = con.execute("select reason from activation.suppression_list where email_sha256 = ?",
                             [email_sha256("paola.sala@libero.it")]).fetchall()
        consent = con.execute("select email, channel, status, source from raw.consent").fetchall()
    assert len(listed) == 1 and "unsubscribed" in listed[0][0]
    assert consent == [("paola.sala@libero.it", "email", "revoked", "unsubscribe_link")]
