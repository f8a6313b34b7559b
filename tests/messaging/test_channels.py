"""The wire: SMTP, SendGrid mail send and the signed webhook, each against the real sandbox on loopback."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from activations.destinations.base import Secret
from activations.messaging.channels import (
    ChannelConfigError,
    OutgoingMessage,
    SendGridMailChannel,
    SmtpChannel,
    WebhookMessageChannel,
    build_email,
    channel_from_config,
    load_channels,
)
from sandbox import running_sandbox, running_smtp
from sandbox.smtp import MailStore

pytestmark = pytest.mark.xdist_group("messaging_wire")

SENDGRID_TOKEN = "test-sendgrid-mail-token"
WEBHOOK_SECRET = "test-webhook-message-secret"
SENDER = "Caffè Aurora <ciao@caffe-aurora.example>"
ROOT = Path(__file__).resolve().parents[2]


def outgoing(i: int = 1, to: str = "anna@example.com", **changes) -> OutgoingMessage:
    fields = {
        "message_id": f"welcome.{i:020d}.1@attiva",
        "to_email": to,
        "to_name": "Anna Bianchi",
        "from_email": "ciao@caffe-aurora.example",
        "from_name": "Caffè Aurora",
        "subject": "Benvenuta, Anna ☕",
        "html": "<p>Ciao <b>Anna</b></p>",
        "text": "Ciao Anna",
        "headers": {"List-Unsubscribe": "<https://caffe-aurora.example/u/abc>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        "campaign": "welcome",
    }
    return OutgoingMessage(**{**fields, **changes})


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("wire") / "sandbox"
    tokens = {"sendgrid": SENDGRID_TOKEN, "webhook": WEBHOOK_SECRET}
    with running_sandbox(state, smtp_port=0, tokens=tokens, env={}) as base:
        yield base


@pytest.fixture
def smtp_channel(sandbox) -> Iterator[SmtpChannel]:
    channel = SmtpChannel(*sandbox.smtp, pool_size=4, timeout=10)
    yield channel
    channel.close()


def stored(base: str, message_id: str) -> dict:
    answer = requests.get(f"{base}/_sandbox/mail/{message_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- SMTP ---------------------------------------------------------------------------------------


def test_smtp_round_trip_stores_both_parts_headers_and_our_ids(sandbox, smtp_channel) -> None:
    delivery = smtp_channel.send(outgoing(1))
    assert delivery.ok and delivery.status == 250 and delivery.provider_id
    mail = stored(sandbox, "welcome.00000000000000000001.1@attiva")
    assert mail["id"] == delivery.provider_id and mail["copies"] == 1
    assert mail["rcpt_tos"] == ["anna@example.com"] and mail["mail_from"] == "ciao@caffe-aurora.example"
    assert mail["content_type"] == "multipart/alternative"
    assert mail["text"].strip() == "Ciao Anna" and mail["html"].strip() == "<p>Ciao <b>Anna</b></p>"
    headers = mail["headers"]
    assert headers["Message-ID"] == "<welcome.00000000000000000001.1@attiva>"
    assert headers["X-Attiva-Message-Id"] == "welcome.00000000000000000001.1@attiva"
    assert headers["X-Attiva-Campaign"] == "welcome" and headers["Subject"] == "Benvenuta, Anna ☕"
    assert headers["From"] == "Caffè Aurora <ciao@caffe-aurora.example>"
    assert headers["To"] == "Anna Bianchi <anna@example.com>"
    assert headers["List-Unsubscribe"] == "<https://caffe-aurora.example/u/abc>"
    assert mail["subject"] == "Benvenuta, Anna ☕"


def test_message_ids_without_a_domain_get_the_senders() -> None:
    email = build_email(outgoing(message_id="row-42"))
    assert email["Message-ID"] == "<row-42@caffe-aurora.example>" and email["X-Attiva-Message-Id"] == "row-42"
    with pytest.raises(ValueError, match="Message-ID"):
        build_email(outgoing(message_id="has space"))
    with pytest.raises(ValueError, match="set by the channel"):
        build_email(outgoing(headers={"Message-ID": "<x@y>"}))
    with pytest.raises(ValueError, match="line break"):  # no header injection from rendered data
        build_email(outgoing(subject="Ciao\r\nBcc: everyone@example.com"))
    body = build_email(outgoing(text="plain ascii", html="<p>caffè</p>")).as_bytes()
    assert b"Content-Transfer-Encoding: 7bit" in body and b"Content-Transfer-Encoding: base64" in body


def test_invalid_message_is_a_permanent_failure(smtp_channel) -> None:
    delivery = smtp_channel.send(outgoing(message_id="bad id"))
    assert not delivery.ok and delivery.permanent and "invalid message" in delivery.reason


def test_451_is_transient_550_permanent_and_the_connection_carries_on(tmp_path: Path) -> None:
    with running_smtp(tmp_path, transient_rate=1.0) as address:
        channel = SmtpChannel(*address, pool_size=1, timeout=10)
        first, second = channel.send(outgoing(1)), channel.send(outgoing(2))
        channel.close()
    for delivery in (first, second):
        assert not delivery.ok and not delivery.permanent and delivery.status == 451
        assert delivery.reason.startswith("smtp 451")
    with running_smtp(tmp_path, permanent_rate=1.0) as address:
        channel = SmtpChannel(*address, pool_size=1, timeout=10)
        delivery = channel.send(outgoing(3))
        channel.close()
    assert not delivery.ok and delivery.permanent and delivery.status == 550
    store = MailStore(tmp_path / "smtp")
    assert store.total == 0
    assert store.counters["connections"] == 2  # one pooled connection per server, reused after each refusal


def test_unreachable_server_stops_the_channel(tmp_path: Path) -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), timeout=2)
    delivery = channel.send(outgoing())
    assert not delivery.ok and not delivery.permanent and delivery.stop and "cannot connect" in delivery.reason


def test_a_connection_closed_by_a_restart_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    channel = SmtpChannel("127.0.0.1", port, pool_size=1, timeout=10)
    with running_smtp(tmp_path, port=port):
        assert channel.send(outgoing(1)).ok
    with running_smtp(tmp_path, port=port):  # the pooled connection died with the first server
        assert channel.send(outgoing(2)).ok
    channel.close()
    assert MailStore(tmp_path / "smtp").total == 2


def test_concurrent_sends_share_the_pool_and_lose_or_repeat_nothing(tmp_path: Path) -> None:
    with running_smtp(tmp_path) as address:
        channel = SmtpChannel(*address, pool_size=4, timeout=10)
        with ThreadPoolExecutor(max_workers=8) as pool:
            deliveries = list(pool.map(lambda i: channel.send(outgoing(i, to=f"p{i}@example.com")), range(300)))
        channel.close()
    assert all(d.ok for d in deliveries) and len({d.provider_id for d in deliveries}) == 300
    store = MailStore(tmp_path / "smtp")
    count, messages = store.messages(limit=1000)
    assert count == 300
    assert sorted(m["attiva_message_id"] for m in messages) == sorted(outgoing(i).message_id for i in range(300))
    assert all(m["rcpt_tos"] == [f"p{int(m['attiva_message_id'].split('.')[1])}@example.com"] for m in messages)
    assert store.counters["connections"] <= 4


def test_auth_over_smtp_and_the_password_never_in_reasons_or_logs(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    password = "pw-never-shown-4711"
    with running_smtp(tmp_path, username="aurora", password=password) as address:
        good = SmtpChannel(*address, username="aurora", password=Secret(password), timeout=10)
        assert good.send(outgoing(1)).ok
        good.close()
        bad = SmtpChannel(*address, username="aurora", password=Secret("wrong-" + password), timeout=10)
        delivery = bad.send(outgoing(2))
        bad.close()
        anonymous = SmtpChannel(*address, timeout=10)
        refused = anonymous.send(outgoing(3))
        anonymous.close()
    # Both are the configuration's fault, not the message's: the channel stops, the messages stay for later.
    assert not delivery.ok and not delivery.permanent and delivery.stop and delivery.status == 535
    assert refused.status == 530 and not refused.permanent and refused.stop
    assert password not in repr(good) and password not in str(delivery) and password not in caplog.text
    assert MailStore(tmp_path / "smtp").total == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (needs `cryptography`, installed with the dev tools)."""
    pytest.importorskip("cryptography", reason="cryptography is not installed: STARTTLS is not exercised")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attiva-sandbox")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls_with_auth(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    trust = ssl.create_default_context(cafile=str(cert))
    options = {"tls_cert": cert, "tls_key": key, "require_starttls": True, "username": "u", "password": "p"}
    with running_smtp(tmp_path, **options) as address:
        channel = SmtpChannel(*address, starttls=True, username="u", password=Secret("p"), ssl_context=trust,
                              timeout=10)
        assert channel.send(outgoing(1)).ok and channel.send(outgoing(2)).ok
        channel.close()
        clear = SmtpChannel(*address, timeout=10)  # no STARTTLS: the server refuses everything else
        refused = clear.send(outgoing(3))
        clear.close()
    assert not refused.ok and refused.status == 530
    assert MailStore(tmp_path / "smtp").total == 2


def test_starttls_asked_for_but_not_offered_never_sends_in_clear(tmp_path: Path) -> None:
    with running_smtp(tmp_path) as address:
        channel = SmtpChannel(*address, starttls=True, timeout=10)
        delivery = channel.send(outgoing())
        channel.close()
    assert not delivery.ok and not delivery.permanent and delivery.stop and "STARTTLS" in delivery.reason
    assert MailStore(tmp_path / "smtp").total == 0


# ---- SendGrid mail send -------------------------------------------------------------------------


def test_sendgrid_mail_send_through_the_sandbox(sandbox) -> None:
    channel = SendGridMailChannel(f"{sandbox}/sendgrid", Secret(SENDGRID_TOKEN), timeout=10)
    delivery = channel.send(outgoing(7))
    assert delivery.ok and delivery.status == 202 and delivery.provider_id
    mail = requests.get(f"{sandbox}/_sandbox/state/sendgrid", timeout=10).json()["mail"]
    sent = next(m for m in mail if m["message_id"] == delivery.provider_id)["message"]
    assert sent["personalizations"] == [{"to": [{"email": "anna@example.com", "name": "Anna Bianchi"}]}]
    assert sent["custom_args"]["attiva_message_id"] == outgoing(7).message_id
    assert [c["type"] for c in sent["content"]] == ["text/plain", "text/html"]
    assert sent["headers"]["List-Unsubscribe"] == "<https://caffe-aurora.example/u/abc>"

    refused = channel.send(outgoing(8, to="not-an-address"))
    assert not refused.ok and refused.permanent and refused.status == 400
    channel.close()


def test_sendgrid_transient_answers_and_secret_safety(sandbox, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = SendGridMailChannel(f"{sandbox}/sendgrid", Secret("wrong-token-123"), timeout=10)
    delivery = wrong.send(outgoing())
    assert not delivery.ok and not delivery.permanent and delivery.stop and delivery.status == 401
    assert "wrong-token-123" not in str(delivery) and "wrong-token-123" not in repr(wrong)
    wrong.close()
    channel = SendGridMailChannel(f"{sandbox}/sendgrid", Secret(SENDGRID_TOKEN), timeout=10)
    try:
        requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "sendgrid", "rate_limit_rate": 1},
                      timeout=10).raise_for_status()
        limited = channel.send(outgoing())
        assert not limited.ok and not limited.permanent and not limited.stop and limited.status == 429
        assert limited.retry_after is not None and 0 <= limited.retry_after <= 61
        requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "sendgrid", "rate_limit_rate": 0,
                                                          "error_rate": 1}, timeout=10).raise_for_status()
        failed = channel.send(outgoing())
        assert not failed.ok and not failed.permanent and not failed.stop and failed.status == 500
    finally:
        requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
        channel.close()
    down = SendGridMailChannel(f"http://127.0.0.1:{free_port()}/sendgrid", Secret(SENDGRID_TOKEN), timeout=2)
    unreachable = down.send(outgoing())
    assert not unreachable.permanent and unreachable.stop and "cannot connect" in unreachable.reason
    down.close()
    assert SENDGRID_TOKEN not in caplog.text and "wrong-token-123" not in caplog.text


# ---- webhook ------------------------------------------------------------------------------------


def test_webhook_message_is_signed_and_stored_by_the_sandbox(sandbox) -> None:
    channel = WebhookMessageChannel(f"{sandbox}/webhook/attiva/messages", Secret(WEBHOOK_SECRET), timeout=10)
    message = outgoing(9)
    delivery = channel.send(message)
    assert delivery.ok and delivery.status == 200
    endpoint = requests.get(f"{sandbox}/_sandbox/state/webhook", timeout=10).json()["endpoints"]["/attiva/messages"]
    row = endpoint["rows"][message.message_id]
    assert row["to_email"] == "anna@example.com" and row["html"] == message.html and row["campaign"] == "welcome"

    body = channel.body(message)
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    from activations.destinations.webhook import signature

    assert signature(Secret(WEBHOOK_SECRET), body) == expected
    assert json.loads(body)["rows"][0]["key"] == message.message_id
    channel.close()

    unsigned = WebhookMessageChannel(f"{sandbox}/webhook/attiva/messages", Secret("not-the-secret"), timeout=10)
    refused = unsigned.send(message)
    assert not refused.ok and not refused.permanent and refused.stop and refused.status == 401
    assert "not-the-secret" not in str(refused)
    unsigned.close()


def test_webhook_row_refused_by_the_receiver_is_permanent() -> None:
    answers: list[bytes] = []

    class Receiver(threading.Thread):
        def run(self) -> None:
            from http.server import BaseHTTPRequestHandler, HTTPServer

            class Handler(BaseHTTPRequestHandler):
                def do_POST(self) -> None:  # noqa: N802 - http.server's spelling
                    answers.append(self.headers["X-Attiva-Signature"].encode())
                    self.rfile.read(int(self.headers["Content-Length"]))
                    body = b'{"results":[{"index":0,"ok":false,"error":"unknown recipient"}]}'
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args) -> None:
                    pass

            self.server = HTTPServer(("127.0.0.1", 0), Handler)
            ready.set()
            self.server.serve_forever(poll_interval=0.05)

    ready = threading.Event()
    receiver = Receiver(daemon=True)
    receiver.start()
    ready.wait(5)
    port = receiver.server.server_address[1]
    channel = WebhookMessageChannel(f"http://127.0.0.1:{port}/hook", Secret("s"), timeout=5)
    delivery = channel.send(outgoing())
    channel.close()
    receiver.server.shutdown()
    assert not delivery.ok and delivery.permanent and delivery.reason == "webhook: unknown recipient"
    assert answers and answers[0].startswith(b"sha256=")


# ---- channels.yml -------------------------------------------------------------------------------


def test_the_root_channels_file_points_at_the_sandbox() -> None:
    channels = load_channels(ROOT / "channels.yml", env={"ATTIVA_SMTP_PORT": "2525", "ATTIVA_SANDBOX_PORT": "9999"})
    try:
        email, esp, webhook = channels["email"], channels["esp"], channels["webhook"]
        assert isinstance(email, SmtpChannel) and (email.host, email.port) == ("127.0.0.1", 2525)
        assert (email.from_name, email.from_email) == ("Emporio Nove", "ciao@emporionove.it")
        assert isinstance(esp, SendGridMailChannel) and esp.base_url == "http://127.0.0.1:9999/sendgrid"
        assert isinstance(webhook, WebhookMessageChannel)
        assert webhook.url == "http://127.0.0.1:9999/webhook/attiva/messages"
        assert webhook.secret.reveal() == "sandbox-webhook-token"
    finally:
        for channel in channels.values():
            channel.close()
    default = channel_from_config("email", {"type": "smtp", "from": SENDER}, {})
    assert default.port == 8025


def test_secrets_come_only_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ChannelConfigError) as error:
        channel_from_config("email", {"type": "smtp", "from": SENDER, "password": "hunter2"}, {}, source="channels.yml")
    message = str(error.value)
    assert "channels.yml" in message and "'password'" in message and "ATTIVA_EMAIL_PASSWORD" in message
    assert "hunter2" not in message
    with pytest.raises(ChannelConfigError, match="'token'.*ATTIVA_ESP_TOKEN"):
        channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER, "token": "t"}, {}, source="channels.yml")
    with pytest.raises(ChannelConfigError, match="ATTIVA_EMAIL_PASSWORD"):
        channel_from_config("email", {"type": "smtp", "from": SENDER, "username": "u"}, {})
    with pytest.raises(ChannelConfigError, match="ATTIVA_ESP_URL points away"):
        channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER}, {"ATTIVA_ESP_URL": "https://api.sendgrid.com"})
    with pytest.raises(ChannelConfigError, match="unknown type"):
        channel_from_config("x", {"type": "pigeon"}, {})
    with pytest.raises(ChannelConfigError, match="unknown option"):
        channel_from_config("email", {"type": "smtp", "from": SENDER, "colour": "blue"}, {})

    esp = channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER},
                              {"ATTIVA_ESP_URL": "https://api.sendgrid.com", "ATTIVA_ESP_TOKEN": "SG.real"})
    assert esp.base_url == "https://api.sendgrid.com" and "SG.real" not in repr(esp)
    esp.close()
    email = channel_from_config("email", {"type": "smtp", "from": SENDER, "username": "u"}, {"ATTIVA_EMAIL_PASSWORD": "pw"})
    assert email.username == "u" and "pw" not in repr(email)
    email.close()

    # An email channel names its sender: there is no default (it would be the demo shop's).
    with pytest.raises(ChannelConfigError, match="channel 'email', field 'from': required"):
        channel_from_config("email", {"type": "smtp"}, {})
    with pytest.raises(ChannelConfigError, match="channel 'esp', field 'from': required"):
        channel_from_config("esp", {"type": "sendgrid_mail"}, {})

    bad = tmp_path / "channels.yml"
    bad.write_text("channels:\n  email:\n    type: smtp\n    password: hunter2\n")
    with pytest.raises(ChannelConfigError, match=f"file {bad}.*'password'"):
        load_channels(bad, env={})


def test_the_activity_lag_is_the_sandboxs_zero_sendgrids_minutes_or_the_files_seconds() -> None:
    """How long a SendGrid channel waits before taking "not in Email Activity" for "not accepted"."""
    sandbox = channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER}, {"ATTIVA_SANDBOX_PORT": "9999"})
    real_env = {"ATTIVA_ESP_URL": "https://api.sendgrid.com", "ATTIVA_ESP_TOKEN": "SG.real"}
    real = channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER}, real_env)
    tuned = channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER, "activity_lag": 90}, real_env)
    assert (sandbox.activity_lag, real.activity_lag, tuned.activity_lag) == (0, 600, 90)
    for channel in (sandbox, real, tuned):
        channel.close()
    with pytest.raises(ChannelConfigError, match="'activity_lag'.*seconds"):
        channel_from_config("esp", {"type": "sendgrid_mail", "from": SENDER, "activity_lag": "soon"}, real_env, source="channels.yml")
    with pytest.raises(ChannelConfigError, match="unknown option"):
        channel_from_config("email", {"type": "smtp", "from": SENDER, "activity_lag": 5}, {})
