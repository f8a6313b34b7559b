"""Meta Lead Ads' leadgen webhook, over real loopback HTTP: the subscription handshake, the signature, a lead
submitted in the sandbox, posted signed to `attiva serve`, read back from the sandbox's Graph API and landed;
a Graph failure that leaves the lead pending until the next webhook; no secret in what is written or logged."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import requests

from activations.destinations.meta.leads import lead_row, signature
from activations.ingest.contract import SOURCES_BY_NAME
from activations.serve import meta_leads
from activations.serve.app import create_app, running_server
from activations.serve.keys import KeysConfig
from sandbox import running_sandbox

APP_SECRET = "test-meta-app-secret"
VERIFY_TOKEN = "test-verify-token"
PAGE_TOKEN = "test-page-token-abcdef"
SECRETS = (APP_SECRET, VERIFY_TOKEN, PAGE_TOKEN)
FIELDS_IT = [{"name": "nome", "values": ["Mario"]}, {"name": "cognome", "values": ["Rossi"]},
             {"name": "e-mail", "values": [" Mario.Rossi@Example.com "]},
             {"name": "numero_di_telefono", "values": ["333 123 4567"]}, {"name": "città", "values": ["Milano"]},
             {"name": "consenso_marketing", "values": ["sì"]}]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), tokens={"meta_leads": PAGE_TOKEN},
                         meta_app_secret=APP_SECRET) as url:
        yield url


@pytest.fixture
def serve(sandbox, tmp_path, monkeypatch):
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "meta_leads"}, timeout=10).raise_for_status()
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()
    monkeypatch.setenv("ATTIVA_META_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("ATTIVA_META_VERIFY_TOKEN", VERIFY_TOKEN)
    monkeypatch.setenv("ATTIVA_META_PAGE_TOKEN", PAGE_TOKEN)
    monkeypatch.setenv("ATTIVA_META_GRAPH_URL", f"{sandbox}/meta_leads")
    app = create_app(KeysConfig([]), tmp_path / "serving", tmp_path / "landing")
    with running_server(app) as url:
        yield url


def landed(landing: Path, folder: str = meta_leads.LEADS_FOLDER) -> list[dict]:
    return [json.loads(line) for path in sorted((landing / folder).glob("*/*.jsonl"))
            for line in path.read_text().splitlines()]


def wait_for(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def submit(sandbox: str, serve: str, **lead) -> dict:
    answer = requests.post(f"{sandbox}/_sandbox/meta/leads", timeout=15,
                           json={"url": f"{serve}/meta/leadgen", "lead": lead})
    answer.raise_for_status()
    return answer.json()


def post_signed(serve: str, body: bytes, secret: str | None = APP_SECRET) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return requests.post(f"{serve}/meta/leadgen", data=body, headers=headers, timeout=10)


def notification(leadgen_id: str = "900000000000001") -> bytes:
    value = {"leadgen_id": leadgen_id, "page_id": "1", "form_id": "2", "ad_id": "3", "adgroup_id": "4",
             "created_time": 1796000000}
    return json.dumps({"object": "page", "entry": [{"id": "1", "time": 1796000000,
                                                     "changes": [{"field": "leadgen", "value": value}]}]}).encode()


# ---- the subscription handshake -----------------------------------------------------------------------


def test_the_verification_echoes_the_challenge_for_our_token_only(serve) -> None:
    ok = requests.get(f"{serve}/meta/leadgen", timeout=10,
                      params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
                   {"hub.challenge": "1"}):
        refused = requests.get(f"{serve}/meta/leadgen", params=params, timeout=10)
        assert refused.status_code == 403 and "1" not in refused.text and VERIFY_TOKEN not in refused.text


# ---- the signature --------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["not-the-app-secret", None], ids=["wrong", "missing"])
def test_a_wrong_or_missing_signature_is_403_and_nothing_is_written(serve, tmp_path, secret) -> None:
    answer = post_signed(serve, notification(), secret)
    assert answer.status_code == 403 and APP_SECRET not in answer.text
    time.sleep(0.2)
    assert not (tmp_path / "landing").exists() or not any((tmp_path / "landing").rglob("*.jsonl"))


def test_a_signature_of_another_body_is_403(serve, tmp_path) -> None:
    headers = {"X-Hub-Signature-256": signature(APP_SECRET, notification("1")), "Content-Type": "application/json"}
    answer = requests.post(f"{serve}/meta/leadgen", data=notification("2"), headers=headers, timeout=10)
    assert answer.status_code == 403


# ---- a lead through the webhook ------------------------------------------------------------------------


def test_a_lead_submitted_in_the_sandbox_is_read_from_the_graph_api_and_landed(sandbox, serve, tmp_path) -> None:
    posted = submit(sandbox, serve, field_data=FIELDS_IT, form_id="F1", ad_id="A1", page_id="P1", platform="ig")
    assert posted["answered"] == 200
    [row] = wait_for(lambda: landed(tmp_path / "landing"))
    assert row["lead_id"] == posted["leadgen_id"] and row["platform"] == "ig" and row["page_id"] == "P1"
    assert (row["form_id"], row["ad_id"]) == ("F1", "A1")
    assert (row["email"], row["phone"], row["first_name"], row["last_name"], row["city"]) == \
        (" Mario.Rossi@Example.com ", "333 123 4567", "Mario", "Rossi", "Milano")
    assert row["consent_marketing"] is True and json.loads(row["field_data"]) == FIELDS_IT
    assert set(row) == set(SOURCES_BY_NAME["social_leads"].column_names)
    wait_for(lambda: not list((tmp_path / "landing" / meta_leads.PENDING_FOLDER).glob("*/*.jsonl")))
    # the sandbox's Graph API was asked with the Page token, once
    state = requests.get(f"{sandbox}/_sandbox/state/meta_leads", timeout=10).json()
    assert state["requests"]["responses"] == {"200": 1}


def test_a_graph_failure_leaves_the_lead_pending_and_the_next_webhook_lands_it(sandbox, serve, tmp_path,
                                                                              caplog) -> None:
    caplog.set_level(logging.DEBUG)
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "meta_leads", "error_rate": 1.0},
                  timeout=10).raise_for_status()
    first = submit(sandbox, serve, field_data=[{"name": "email", "values": ["anna@example.com"]}], platform="fb")
    assert first["answered"] == 200  # answered at once: the lead is read afterwards
    pending_dir = tmp_path / "landing" / meta_leads.PENDING_FOLDER
    [pending] = wait_for(lambda: [json.loads(line) for p in pending_dir.glob("*/*.jsonl")
                                  for line in p.read_text().splitlines() if json.loads(line)["attempts"] >= 1])
    assert pending["leadgen_id"] == first["leadgen_id"] and "500" in pending["last_error"]
    assert landed(tmp_path / "landing") == []
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()
    second = submit(sandbox, serve, field_data=[{"name": "phone_number", "values": ["+393401112233"]}])
    rows = wait_for(lambda: (r := landed(tmp_path / "landing")) and len(r) == 2 and r)
    assert {r["lead_id"] for r in rows} == {first["leadgen_id"], second["leadgen_id"]}
    wait_for(lambda: not list(pending_dir.glob("*/*.jsonl")))
    written = "".join(p.read_text() for p in (tmp_path / "landing").rglob("*") if p.is_file())
    for secret in SECRETS:
        assert secret not in written and secret not in caplog.text


def test_retry_pending_without_a_page_token_keeps_the_lead_and_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("ATTIVA_META_PAGE_TOKEN", raising=False)
    from activations.serve.events import write_landing_file

    write_landing_file(tmp_path / meta_leads.PENDING_FOLDER, [{"leadgen_id": "7", "attempts": 0}], "leadgen")
    assert meta_leads.retry_pending(tmp_path) == {"landed": 0, "pending": 1}
    [path] = (tmp_path / meta_leads.PENDING_FOLDER).glob("*/*.jsonl")
    row = json.loads(path.read_text())
    assert row["attempts"] == 1 and "ATTIVA_META_PAGE_TOKEN" in row["last_error"]


def test_a_refused_token_is_never_echoed_into_the_pending_error(sandbox, tmp_path) -> None:
    from activations.destinations.base import Secret
    from activations.serve.events import write_landing_file

    write_landing_file(tmp_path / meta_leads.PENDING_FOLDER, [{"leadgen_id": "7", "attempts": 0}], "leadgen")
    wrong = "wrong-token-" + "x" * 20
    assert meta_leads.retry_pending(tmp_path, f"{sandbox}/meta_leads", "v21.0", Secret(wrong))["pending"] == 1
    text = "".join(p.read_text() for p in (tmp_path / meta_leads.PENDING_FOLDER).glob("*/*.jsonl"))
    assert "401" in text and wrong not in text


def test_english_and_italian_questions_and_disclaimer_checkboxes_fill_the_same_columns() -> None:
    lead = {"id": "1", "created_time": "2026-12-01T10:00:00+0000", "platform": "fb",
            "field_data": [{"name": "full_name", "values": ["Anna Bianchi"]},
                           {"name": "email", "values": ["anna@example.com"]}],
            "custom_disclaimer_responses": [{"checkbox_key": "marketing_optin", "is_checked": "1"}]}
    row = lead_row(lead, {"leadgen_id": "1", "page_id": "9"}, "2026-12-01T10:00:05Z")
    assert row["full_name"] == "Anna Bianchi" and row["email"] == "anna@example.com"
    assert row["created_at"] == "2026-12-01T10:00:00Z" and row["consent_marketing"] is True
    assert lead_row({"id": "2", "field_data": []}, {"created_time": "1796000000"}, "x")["consent_marketing"] is None


def test_attiva_leads_fetch_lands_what_a_graph_outage_left_pending(sandbox, serve, tmp_path, capsys) -> None:
    from activations.cli import main

    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "meta_leads", "error_rate": 1.0},
                  timeout=10).raise_for_status()
    posted = submit(sandbox, serve, field_data=[{"name": "email", "values": ["carla@example.com"]}])
    pending_dir = tmp_path / "landing" / meta_leads.PENDING_FOLDER
    wait_for(lambda: [p for p in pending_dir.glob("*/*.jsonl") if '"attempts": 1' in p.read_text()])
    landing = ["leads", "fetch", "--landing", str(tmp_path / "landing")]
    assert main(landing) == 1 and "1 still pending" in capsys.readouterr().out  # Meta is still down
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()
    assert main(landing) == 0 and "1 lead(s) landed" in capsys.readouterr().out
    assert [r["lead_id"] for r in landed(tmp_path / "landing")] == [posted["leadgen_id"]]
    assert not list(pending_dir.glob("*/*.jsonl"))


def test_without_an_app_secret_the_webhook_is_off(serve, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("ATTIVA_META_APP_SECRET")
    assert post_signed(serve, notification()).status_code == 404
    assert not (tmp_path / "landing").exists() or not any((tmp_path / "landing").rglob("*.jsonl"))


def test_a_body_over_a_megabyte_is_refused_before_its_signature_is_computed(serve) -> None:
    body = b'{"object": "page", "entry": [], "pad": "' + b"x" * meta_leads.MAX_BODY + b'"}'
    assert post_signed(serve, body).status_code == 413
