"""The sandbox's mail server: real SMTP on loopback, stored messages, faults, AUTH and the HTTP views."""

from __future__ import annotations

import argparse
import json
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from sandbox import running_sandbox, running_smtp
from sandbox.command import add_arguments, smtp_options
from sandbox.smtp import MailStore

pytestmark = pytest.mark.xdist_group("messaging_wire")


def message(to: str = "anna@example.com", mid: str = "m1@attiva", subject: str = "Il tuo caffè") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Caffè Aurora <ciao@caffe-aurora.example>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{mid}>"
    mail["X-Attiva-Message-Id"] = mid
    mail.set_content("Ciao Anna")
    mail.add_alternative("<p>Ciao <b>Anna</b></p>", subtype="html")
    return mail


def smtp(address: tuple[str, int]) -> smtplib.SMTP:
    return smtplib.SMTP(*address, local_hostname="test.localhost", timeout=10)


def test_round_trip_is_stored_with_both_parts_and_served_over_http(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, smtp_port=0) as base:
        assert base.smtp is not None and base.smtp_port == base.smtp[1]
        health = requests.get(f"{base}/_sandbox/health", timeout=10).json()
        assert health["smtp"]["port"] == base.smtp_port
        with smtp(base.smtp) as client:
            assert client.send_message(message()) == {}
            assert client.send_message(message("bruno@example.com", "m2@attiva")) == {}

        listing = requests.get(f"{base}/_sandbox/mail", timeout=10).json()
        assert listing["count"] == listing["total"] == 2
        first = listing["messages"][0]
        assert first["rcpt_tos"] == ["anna@example.com"] and first["mail_from"] == "ciao@caffe-aurora.example"
        assert first["message_id"] == first["attiva_message_id"] == "m1@attiva"
        assert first["subject"] == "Il tuo caffè" and first["size"] > 0 and "raw" not in first
        assert listing["counters"]["messages"] == 2 and listing["counters"]["rcpt"] == {"250": 2}

        only = requests.get(f"{base}/_sandbox/mail", params={"to": "BRUNO@example.com"}, timeout=10).json()
        assert only["count"] == 1 and only["total"] == 2 and only["messages"][0]["message_id"] == "m2@attiva"
        assert requests.get(f"{base}/_sandbox/mail", params={"limit": 1}, timeout=10).json()["messages"][0][
            "message_id"] == "m2@attiva"

        full = requests.get(f"{base}/_sandbox/mail/m1@attiva", timeout=10).json()
        assert full["content_type"] == "multipart/alternative"
        assert full["text"].strip() == "Ciao Anna" and full["html"].strip() == "<p>Ciao <b>Anna</b></p>"
        assert full["headers"]["Message-ID"] == "<m1@attiva>" and "Content-Type: multipart/alternative" in full["raw"]
        assert requests.get(f"{base}/_sandbox/mail/{first['id']}", timeout=10).json()["message_id"] == "m1@attiva"
        assert requests.get(f"{base}/_sandbox/mail/nope", timeout=10).status_code == 404


def test_messages_survive_a_restart_and_reset_empties_them(tmp_path: Path) -> None:
    with running_smtp(tmp_path) as address, smtp(address) as client:
        client.send_message(message())
    lines = (tmp_path / "smtp" / "messages.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["rcpt_tos"] == ["anna@example.com"]
    with running_smtp(tmp_path) as address, smtp(address) as client:
        client.send_message(message(mid="m2@attiva"))
    counters = json.loads((tmp_path / "smtp" / "counters.json").read_text())
    assert counters["messages"] == 2 and counters["connections"] == 2

    with running_sandbox(tmp_path, smtp_port=0) as base:
        listing = requests.get(f"{base}/_sandbox/mail", timeout=10).json()
        assert [m["message_id"] for m in listing["messages"]] == ["m1@attiva", "m2@attiva"]
        assert requests.post(f"{base}/_sandbox/reset", json={"destination": "mail"}, timeout=10).json() == {
            "reset": ["mail"]}
        assert requests.get(f"{base}/_sandbox/mail", timeout=10).json()["count"] == 0
        with smtp(base.smtp) as client:
            client.send_message(message(mid="m3@attiva"))
        assert "mail" in requests.post(f"{base}/_sandbox/reset", timeout=10).json()["reset"]
        assert requests.get(f"{base}/_sandbox/mail", timeout=10).json()["total"] == 0


def test_the_http_sandbox_reads_mail_a_separate_smtp_server_stores(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as base:
        assert base.smtp is None and requests.get(f"{base}/_sandbox/health", timeout=10).json()["smtp"] is None
        with running_smtp(tmp_path) as address, smtp(address) as client:
            client.send_message(message())
            assert requests.get(f"{base}/_sandbox/mail", timeout=10).json()["count"] == 1
        assert requests.get(f"{base}/_sandbox/mail/faults", timeout=10).status_code == 404


def test_rcpt_faults_answer_451_and_550(tmp_path: Path) -> None:
    with running_smtp(tmp_path, transient_rate=1.0) as address, smtp(address) as client:
        client.ehlo()
        client.mail("ciao@caffe-aurora.example")
        code, text = client.rcpt("anna@example.com")
        assert code == 451 and b"fault injection" in text
        client.rset()
    with running_smtp(tmp_path, permanent_rate=1.0) as address, smtp(address) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(message())
        assert refused.value.recipients["anna@example.com"][0] == 550
    assert MailStore(tmp_path / "smtp").total == 0


def test_permanent_refusals_follow_the_address_and_transient_ones_the_seeded_stream(tmp_path: Path) -> None:
    addresses = [f"p{i}@example.com" for i in range(60)]

    def codes(**faults: float) -> list[int]:
        with running_smtp(tmp_path, **faults) as address, smtp(address) as client:
            client.ehlo()
            out = []
            for rcpt in addresses:
                client.mail("ciao@caffe-aurora.example")
                out.append(client.rcpt(rcpt)[0])
                client.rset()
            return out

    permanent = codes(permanent_rate=0.3, seed=7)
    assert permanent == codes(permanent_rate=0.3, seed=7)
    assert 5 < permanent.count(550) < 35 and set(permanent) == {250, 550}
    transient = codes(transient_rate=0.3, seed=7)
    assert transient == codes(transient_rate=0.3, seed=7) and set(transient) == {250, 451}
    assert transient != codes(transient_rate=0.3, seed=8)


def test_faults_can_change_while_running(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, smtp_port=0, smtp={"latency_ms": 0}) as base:
        answer = requests.post(f"{base}/_sandbox/mail/faults", json={"permanent_rate": 1}, timeout=10)
        assert answer.status_code == 200 and answer.json()["permanent_rate"] == 1.0
        with smtp(base.smtp) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(message())
        assert requests.post(f"{base}/_sandbox/mail/faults", json={"nope": 1}, timeout=10).status_code == 400
        assert requests.delete(f"{base}/_sandbox/mail/faults", timeout=10).json()["permanent_rate"] == 0.0
        assert requests.post(f"{base}/_sandbox/mail/faults", json={"latency_ms": 150}, timeout=10).ok
        started = time.perf_counter()
        with smtp(base.smtp) as client:
            client.send_message(message())
        assert time.perf_counter() - started >= 0.15


def test_auth_is_required_when_configured_and_the_password_never_shows(tmp_path: Path) -> None:
    secret = "s3cret-smtp-pass"
    with running_sandbox(tmp_path, smtp_port=0, smtp={"username": "attiva", "password": secret}) as base:
        view = requests.get(f"{base}/_sandbox/health", timeout=10).json()["smtp"]
        assert view["auth"] is True and secret not in json.dumps(view)
        with smtp(base.smtp) as client:
            client.ehlo()
            assert client.mail("ciao@caffe-aurora.example")[0] == 530
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("attiva", "wrong")
        with smtp(base.smtp) as client:
            client.login("attiva", secret)
            assert client.send_message(message()) == {}
        listing = requests.get(f"{base}/_sandbox/mail", timeout=10).json()
        assert listing["count"] == 1 and listing["counters"]["auth_failures"] >= 1
    assert secret not in (tmp_path / "smtp" / "counters.json").read_text()


def test_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="transient_rate"):
        running_smtp(tmp_path, transient_rate=2).__enter__()
    with pytest.raises(ValueError, match="go together"):
        running_smtp(tmp_path, username="only").__enter__()
    with pytest.raises(TypeError, match="unknown SMTP option"):
        running_smtp(tmp_path, colour="blue").__enter__()


def test_cli_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTIVA_SMTP_PORT", "2525")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).smtp_port == 2525
    args = parser.parse_args(["--smtp-port", "0", "--smtp-transient-rate", "0.1", "--smtp-username", "u"])
    assert args.smtp_port == 0
    with pytest.raises(SystemExit, match="ATTIVA_SANDBOX_SMTP_PASSWORD"):
        smtp_options(args, {})
    assert smtp_options(args, {"ATTIVA_SANDBOX_SMTP_PASSWORD": "p"}) == {
        "transient_rate": 0.1, "username": "u", "password": "p"}
