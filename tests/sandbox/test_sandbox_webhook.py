"""Webhook: HMAC-signed batches, per-row results, rows kept by key."""

from __future__ import annotations

import json

import pytest
import requests
from sandbox_helpers import post_webhook, sign, state


def test_signed_batch_is_received_and_rows_without_key_refused(sandbox: str) -> None:
    answer = post_webhook(
        sandbox, [{"key": "c1", "email": "a@example.com"}, {"email": "no key"}, {"key": "c2"}], path="crm/sync"
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 3,
        "results": [
            {"index": 0, "ok": True, "error": None},
            {"index": 1, "ok": False, "error": "row has no key"},
            {"index": 2, "ok": True, "error": None},
        ],
    }
    post_webhook(sandbox, [{"key": "c1", "email": "new@example.com"}], path="crm/sync")
    endpoint = state(sandbox, "webhook")["endpoints"]["/crm/sync"]
    assert endpoint["received"] == 4
    assert endpoint["rows"] == {"c1": {"key": "c1", "email": "new@example.com"}, "c2": {"key": "c2"}}


def test_missing_or_wrong_signature_is_401(sandbox: str) -> None:
    body = json.dumps({"rows": [{"key": "k"}]}).encode()
    missing = requests.post(f"{sandbox}/webhook/x", data=body)
    wrong = requests.post(f"{sandbox}/webhook/x", data=body, headers={"X-Attiva-Signature": "sha256=" + "0" * 64})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert "error" in wrong.json()
    assert state(sandbox, "webhook")["endpoints"] == {}


def test_oversized_batch_is_413(start_sandbox) -> None:
    url = start_sandbox(webhook_max_rows=5)
    answer = post_webhook(url, [{"key": str(i)} for i in range(6)])
    assert answer.status_code == 413
    assert post_webhook(url, [{"key": str(i)} for i in range(5)]).status_code == 200


def test_configured_rate_limit_is_429_with_retry_after(start_sandbox) -> None:
    url = start_sandbox(rate_limits={"webhook": {"requests": 1, "window_seconds": 3}})
    assert post_webhook(url, [{"key": "a"}]).status_code == 200
    limited = post_webhook(url, [{"key": "a"}])
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 3


def test_unsigned_posts_only_when_configured(start_sandbox, tmp_path) -> None:
    body = json.dumps({"rows": [{"key": "k", "email": "a@example.com"}]}).encode()
    strict = start_sandbox(tmp_path / "strict")
    assert requests.post(f"{strict}/webhook/x", data=body, timeout=10).status_code == 401

    lenient = start_sandbox(tmp_path / "lenient", webhook_require_signature=False)
    unsigned = requests.post(f"{lenient}/webhook/x", data=body, timeout=10)
    assert unsigned.status_code == 200
    assert unsigned.json()["results"] == [{"index": 0, "ok": True, "error": None}]
    wrong = requests.post(f"{lenient}/webhook/x", data=body, headers={"X-Attiva-Signature": "sha256=" + "0" * 64})
    assert wrong.status_code == 401  # a signature that is sent is still checked
    assert post_webhook(lenient, [{"key": "k2"}], path="x").status_code == 200
    assert state(lenient, "webhook")["endpoints"]["/x"]["received"] == 2


def test_require_signature_takes_only_a_bool(tmp_path) -> None:
    from sandbox.config import SandboxConfig

    assert SandboxConfig.build(tmp_path, env={}).webhook_require_signature is True
    assert SandboxConfig.build(tmp_path, env={}, webhook_require_signature=False).webhook_require_signature is False
    with pytest.raises(TypeError):
        SandboxConfig.build(tmp_path, env={}, webhook_require_signature="false")


def test_every_row_is_checked_whatever_the_batch_holds(sandbox: str) -> None:
    def post(body: dict) -> dict:
        raw = json.dumps(body).encode()
        answer = requests.post(f"{sandbox}/webhook/k", data=raw, timeout=10,
                               headers={"X-Attiva-Signature": sign(raw)})
        assert answer.status_code == 200
        return answer.json()

    rows = [{"key": f"c{i}", "n": i} for i in range(5)]
    assert post({"rows": rows})["results"] == [{"index": i, "ok": True, "error": None} for i in range(5)]
    mixed = post({"rows": [{"key": 7}, "not a row", {"key": ""}, {"key": ["c1"]}, {"key": "c9"}]})["results"]
    assert [r["ok"] for r in mixed] == [True, False, False, False, True]
    assert mixed[1] == {"index": 1, "ok": False, "error": "row has no key"}
    removed = post({"operation": "remove", "rows": [{"key": "c0"}, {"key": "c1"}, {"key": "gone"}]})
    assert [r["ok"] for r in removed["results"]] == [True, True, True]
    endpoint = state(sandbox, "webhook")["endpoints"]["/k"]
    assert endpoint["received"] == 13
    assert sorted(endpoint["rows"]) == ["7", "c2", "c3", "c4", "c9"]
    assert endpoint["rows"]["7"] == {"key": 7}


def test_prefer_minimal_answers_a_count_when_every_row_is_taken(sandbox: str) -> None:
    minimal = {"Prefer": "respond-async, return=minimal"}
    taken = post_webhook(sandbox, [{"key": "c1"}, {"key": "c2"}], path="min", headers=minimal)
    assert taken.json() == {"received": 2, "accepted": 2}
    # A refused row needs saying which: the per-row results, asked for or not.
    mixed = post_webhook(sandbox, [{"key": "c3"}, {"email": "no key"}], path="min", headers=minimal)
    assert [r["ok"] for r in mixed.json()["results"]] == [True, False]
    assert sorted(state(sandbox, "webhook")["endpoints"]["/min"]["rows"]) == ["c1", "c2", "c3"]
