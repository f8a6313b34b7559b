"""The control surface: state, reset, fault injection, persistence and start-up settings."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pytest
import requests
from sandbox_helpers import TOKENS, auth, post_webhook, set_faults, sha, state

from sandbox import command, server
from sandbox.config import SandboxConfig


def within(observed: int, n: int, p: float) -> bool:
    """Observed count within 4 standard deviations of a binomial(n, p) mean."""
    return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1


def test_request_fault_rates_are_roughly_honoured_and_seeded(sandbox: str) -> None:
    set_faults(sandbox, destination="webhook", error_rate=0.2, rate_limit_rate=0.1, seed=3)
    n = 400
    first = [post_webhook(sandbox, [{"key": f"k{i}"}]).status_code for i in range(n)]
    assert within(first.count(503), n, 0.2)
    assert within(first.count(429), n, 0.1)
    assert first.count(200) + first.count(503) + first.count(429) == n

    set_faults(sandbox, destination="webhook", seed=3)  # same seed: same sequence again
    again = [post_webhook(sandbox, [{"key": f"k{i}"}]).status_code for i in range(60)]
    assert again == first[:60]
    set_faults(sandbox, destination="webhook", seed=4)
    assert [post_webhook(sandbox, [{"key": "x"}]).status_code for _ in range(60)] != first[:60]


def test_5xx_faults_change_nothing_and_use_the_vendor_shape(sandbox: str) -> None:
    set_faults(sandbox, destination="*", error_rate=1.0)
    hubspot = requests.post(
        f"{sandbox}/hubspot/crm/v3/objects/contacts/batch/upsert",
        json={"inputs": [{"id": "a@example.com", "idProperty": "email"}]},
        **auth("hubspot"),
    )
    assert hubspot.status_code == 502 and hubspot.json()["status"] == "error"
    google = requests.post(f"{sandbox}/google/v1/audienceMembers:ingest", json={}, **auth("google"))
    assert google.status_code == 503 and google.json()["error"]["status"] == "UNAVAILABLE"
    assert state(sandbox, "hubspot")["contacts"] == {}
    assert state(sandbox, "hubspot")["requests"]["responses"] == {"502": 1}


def test_rate_limit_faults_use_the_platform_signal(sandbox: str) -> None:
    set_faults(sandbox, destination="*", rate_limit_rate=1.0)
    meta = requests.post(f"{sandbox}/meta/v21.0/1/users", json={}, **auth("meta"))
    assert meta.status_code == 400 and meta.json()["error"]["code"] == 17
    sf = requests.patch(
        f"{sandbox}/salesforce/services/data/v61.0/composite/sobjects/Contact/Ext__c", json={}, **auth("salesforce")
    )
    assert sf.status_code == 403 and sf.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    sendgrid = requests.put(f"{sandbox}/sendgrid/v3/marketing/contacts", json={}, **auth("sendgrid"))
    assert sendgrid.status_code == 429 and sendgrid.headers["X-RateLimit-Remaining"] == "0"


def test_row_rejections_follow_the_row_not_the_request(sandbox: str) -> None:
    set_faults(sandbox, destination="webhook", row_reject_rate=0.1, seed=11)
    rows = [{"key": f"cust-{i}"} for i in range(2000)]
    results = post_webhook(sandbox, rows).json()["results"]
    rejected = [r["index"] for r in results if not r["ok"]]
    assert within(len(rejected), 2000, 0.1)
    assert all(r["error"] == "rejected by sandbox fault injection" for r in results if not r["ok"])
    retried = post_webhook(sandbox, [rows[i] for i in reversed(rejected)]).json()["results"]
    assert not any(r["ok"] for r in retried)
    set_faults(sandbox, destination="webhook", seed=12)
    other = [r["index"] for r in post_webhook(sandbox, rows).json()["results"] if not r["ok"]]
    assert other != rejected


def test_row_rejections_in_meta_are_counted_invalid(sandbox: str) -> None:
    set_faults(sandbox, destination="meta", row_reject_rate=1.0)
    body = {"payload": {"schema": ["EMAIL"], "data": [[sha("a@example.com")], [sha("b@example.com")]]}}
    answer = requests.post(f"{sandbox}/meta/v21.0/1/users", json=body, **auth("meta")).json()
    assert answer["num_invalid_entries"] == 2
    assert set(answer["invalid_entry_samples"].values()) == {"rejected by sandbox fault injection"}


def test_timeouts_hold_an_applied_answer_and_latency_is_added(sandbox: str) -> None:
    set_faults(sandbox, destination="webhook", timeout_rate=1.0, timeout_seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_webhook(sandbox, [{"key": "late"}], timeout=0.2)
    assert "late" in state(sandbox, "webhook")["endpoints"]["/hooks/test"]["rows"]  # the write happened

    set_faults(sandbox, destination="webhook", timeout_rate=0.0, latency_ms=150)
    started = time.perf_counter()
    assert post_webhook(sandbox, [{"key": "slow"}]).status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_faults_endpoint_validates_reads_and_restores(sandbox: str) -> None:
    assert requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "nope"}).status_code == 400
    assert requests.post(f"{sandbox}/_sandbox/faults", json={"error_rate": 1.5}).status_code == 400
    assert requests.post(f"{sandbox}/_sandbox/faults", json={"surprise": 1}).status_code == 400
    view = set_faults(sandbox, destination="hubspot", error_rate=0.05, rate_limits={"requests": 7, "window_seconds": 2})
    assert view["hubspot"]["error_rate"] == 0.05
    assert view["hubspot"]["rate_limits"]["requests"] == 7
    assert view["salesforce"]["error_rate"] == 0.0
    upsert = requests.post(
        f"{sandbox}/hubspot/crm/v3/objects/contacts/batch/upsert",
        json={"inputs": [{"id": "a@example.com", "idProperty": "email"}]},
        **auth("hubspot"),
    )
    assert upsert.headers.get("X-HubSpot-RateLimit-Max", "7") == "7"
    restored = requests.delete(f"{sandbox}/_sandbox/faults").json()
    assert restored["hubspot"]["error_rate"] == 0.0 and restored["hubspot"]["rate_limits"]["requests"] == 190
    assert requests.get(f"{sandbox}/_sandbox/faults").json() == restored


def _fill(url: str) -> None:
    requests.post(
        f"{url}/hubspot/crm/v3/objects/contacts/batch/upsert",
        json={"inputs": [{"id": "ada@example.com", "idProperty": "email", "properties": {"firstname": "Ada"}}]},
        **auth("hubspot"),
    ).raise_for_status()
    requests.post(
        f"{url}/meta/v21.0/9/users",
        json={"payload": {"schema": ["EMAIL"], "data": [[sha("ada@example.com")]]}},
        **auth("meta"),
    ).raise_for_status()
    assert post_webhook(url, [{"key": "k1", "v": 1}]).status_code == 200


def test_state_survives_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        _fill(url)
        before = state(url)
        _fill(url)  # changes after the last explicit write reach disk on shutdown
        before_stop = {d: state(url, d) for d in ("hubspot", "meta", "webhook")}
    assert before_stop["webhook"]["endpoints"]["/hooks/test"]["received"] == 2
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        after = state(url)
        assert {d: after[d] for d in before_stop} == before_stop
        assert after["meta"]["audiences"]["9"]["count"] == 1
        # Record ids keep counting from where they were.
        new = requests.post(
            f"{url}/hubspot/crm/v3/objects/contacts/batch/upsert",
            json={"inputs": [{"id": "bob@example.com", "idProperty": "email"}]},
            **auth("hubspot"),
        ).json()
    assert int(new["results"][0]["id"]) > int(before["hubspot"]["contacts"]["ada@example.com"]["id"])


def test_changes_are_written_by_the_debounced_writer(start_sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "debounced"
    url = start_sandbox(folder, persist_interval=0.2)
    assert post_webhook(url, [{"key": "k1"}]).status_code == 200
    deadline = time.monotonic() + 3
    path = folder / "webhook.json"
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    saved = json.loads(path.read_text())
    assert saved["state"]["endpoints"]["/hooks/test"]["rows"] == {"k1": {"key": "k1"}}
    assert saved["requests"]["requests"] == 1


def test_shutdown_writes_state(tmp_path: Path) -> None:
    folder = tmp_path / "on-exit"
    with server.running_sandbox(folder, tokens=TOKENS, persist_interval=60) as url:
        assert post_webhook(url, [{"key": "k9"}]).status_code == 200
    saved = json.loads((folder / "webhook.json").read_text())
    assert "k9" in saved["state"]["endpoints"]["/hooks/test"]["rows"]


def test_reset_empties_one_or_all_destinations(sandbox: str) -> None:
    _fill(sandbox)
    assert requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "webhook"}).json() == {"reset": ["webhook"]}
    held = state(sandbox)
    assert held["webhook"]["endpoints"] == {} and held["hubspot"]["contacts"] != {}
    assert requests.post(f"{sandbox}/_sandbox/reset").status_code == 200
    held = state(sandbox)
    assert held["hubspot"]["contacts"] == {} and held["meta"]["audiences"] == {}
    assert all(held[d]["requests"]["requests"] == 0 for d in held)
    assert requests.get(f"{sandbox}/_sandbox/state/nope").status_code == 404


def test_tokens_faults_and_limits_come_from_the_environment(start_sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTIVA_HUBSPOT_TOKEN", "from-env")
    monkeypatch.setenv("ATTIVA_SANDBOX_FAULTS", json.dumps({"destination": "webhook", "error_rate": 1.0}))
    monkeypatch.setenv("ATTIVA_SANDBOX_RATE_LIMITS", json.dumps({"google": {"requests": 5}}))
    url = start_sandbox(tokens={})
    upsert = f"{url}/hubspot/crm/v3/objects/contacts/batch/upsert"
    body = {"inputs": [{"id": "a@example.com", "idProperty": "email"}]}
    assert requests.post(upsert, json=body, **auth("hubspot", "from-env")).status_code == 200
    assert requests.post(upsert, json=body, **auth("hubspot", "sandbox-hubspot-token")).status_code == 401
    faults = requests.get(f"{url}/_sandbox/faults").json()
    assert faults["webhook"]["error_rate"] == 1.0 and faults["google"]["rate_limits"]["requests"] == 5


def test_default_tokens_are_sandbox_type_token(tmp_path: Path) -> None:
    config = SandboxConfig.build(tmp_path, env={})
    assert config.tokens["hubspot"] == "sandbox-hubspot-token"
    assert config.tokens["webhook"] == "sandbox-webhook-token"
    assert SandboxConfig.build(env={"ATTIVA_SANDBOX_STATE": str(tmp_path / "s")}).state_dir == tmp_path / "s"


def test_command_line_flags_become_run_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(server, "run", lambda **kwargs: seen.update(kwargs))
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(
        ["--port", "9999", "--state", "/tmp/x", "--fault-destination", "meta", "--error-rate", "0.1", "--seed", "5",
         "--rate-limits", '{"hubspot": {"requests": 3}}', "--sendgrid-import-seconds", "0.5"]
    )  # fmt: skip
    assert command.run_from_args(args) == 0
    assert seen["port"] == 9999 and seen["state_dir"] == Path("/tmp/x")
    assert seen["faults"] == [{"destination": "meta", "error_rate": 0.1, "seed": 5}]
    assert seen["rate_limits"] == {"hubspot": {"requests": 3}}
    assert seen["sendgrid_import_seconds"] == 0.5
    config = SandboxConfig.build("/tmp/x", faults=seen["faults"], rate_limits=seen["rate_limits"], env={})
    assert config.faults["meta"].error_rate == 0.1 and config.faults["hubspot"].error_rate == 0.0


def test_injected_row_rejections_in_each_vendor_shape(sandbox: str) -> None:
    set_faults(sandbox, destination="*", row_reject_rate=1.0)
    sf = requests.patch(
        f"{sandbox}/salesforce/services/data/v61.0/composite/sobjects/Contact/Ext__c",
        json={"records": [{"attributes": {"type": "Contact"}, "Ext__c": "A1"}]},
        **auth("salesforce"),
    ).json()
    assert sf[0]["success"] is False and sf[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    google = requests.post(
        f"{sandbox}/google/v1/audienceMembers:ingest",
        json={
            "destinations": [
                {"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1"}, "productDestinationId": "2"}
            ],
            "audienceMembers": [{"userData": {"userIdentifiers": [{"emailAddress": sha("a@example.com")}]}}],
            "encoding": "HEX",
        },
        **auth("google"),
    )
    violation = google.json()["error"]["details"][1]["fieldViolations"][0]
    assert google.status_code == 400 and violation == {
        "field": "audience_members.audience_members[0]",
        "description": "rejected by sandbox fault injection",
        "reason": "INVALID_AUDIENCE_MEMBER",
    }
    mailchimp = requests.post(
        f"{sandbox}/mailchimp/3.0/lists/l1",
        json={"members": [{"email_address": "a@example.com", "status": "subscribed"}]},
        **auth("mailchimp"),
    ).json()
    assert mailchimp["error_count"] == 1 and mailchimp["errors"][0]["email_address"] == "a@example.com"
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "brevo", "row_reject_rate": 0})
    requests.post(f"{sandbox}/brevo/v3/contacts", json={"email": "a@example.com"}, **auth("brevo")).raise_for_status()
    set_faults(sandbox, destination="brevo", row_reject_rate=1.0)
    brevo = requests.post(
        f"{sandbox}/brevo/v3/contacts/lists/3/contacts/add", json={"emails": ["a@example.com"]}, **auth("brevo")
    )
    assert brevo.json() == {"contacts": {"success": [], "failure": ["a@example.com"]}}


def test_an_unreadable_state_file_is_set_aside(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "hubspot.json").write_text("{not json")
    with server.running_sandbox(folder, tokens=TOKENS) as url:
        assert state(url, "hubspot")["contacts"] == {}
    assert (folder / "hubspot.json.corrupt").exists()
