"""SMS through Twilio's Messages API, over real loopback HTTP: the channel against the sandbox's Twilio, the
engine's verdicts (sent, failed, suppressed on STOP, retried on 429, looked up after a crash), and the
signed status callbacks and STOP replies `attiva serve` receives."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

import duckdb
import pytest
import requests

from activations.destinations.base import Secret
from activations.destinations.twilio.messages import TwilioSmsChannel, marker, segments
from activations.destinations.twilio.signature import signature
from activations.messaging import feedback
from activations.messaging.channels import SANDBOX_TWILIO_ACCOUNT_SID, channel_from_config
from activations.messaging.delivery import Delivery, OutgoingMessage, transient
from activations.messaging.policy import Caps, QuietHours, Settings, Step, Trigger
from activations.messaging.send import run_pass
from activations.messaging.templates import TemplateError, Templates, sample_context
from activations.serve.app import create_app, running_server
from activations.serve.keys import KeysConfig
from sandbox import running_sandbox

pytestmark = pytest.mark.xdist_group("messaging_twilio")

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 13:00 in Rome
NO_CAPS = Settings(caps=Caps(None, None), quiet_hours=None)
TOKEN = "sandbox-twilio-token"
FROM = "+390200000001"
COLUMNS = ("trigger_key", "customer_id", "occurred_at", "exit_reason", "first_name")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), twilio_opted_out_numbers=("+393330000610",),
                         twilio_undelivered_numbers=("+393330000030",)) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(sandbox, tmp_path, monkeypatch):
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "twilio"}, timeout=10).raise_for_status()
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()
    monkeypatch.setenv("ATTIVA_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("ATTIVA_SANDBOX_PORT", sandbox.rsplit(":", 1)[1])
    channels = tmp_path / "channels.yml"
    channels.write_text(f"channels:\n  sms:\n    type: twilio_sms\n    from_number: \"{FROM}\"\n", encoding="utf-8")
    monkeypatch.setenv("ATTIVA_CHANNELS", str(channels))
    monkeypatch.delenv("ATTIVA_SMS_TOKEN", raising=False)
    monkeypatch.delenv("ATTIVA_SMS_URL", raising=False)


def channel(sandbox: str, **options) -> TwilioSmsChannel:
    return TwilioSmsChannel(f"{sandbox}/twilio", SANDBOX_TWILIO_ACCOUNT_SID, Secret(TOKEN), from_number=FROM,
                            activity_lag=0, timeout=10, **options)


def sms(i: int = 1, to: str = "+393331234567", text: str = "Ciao! STOP per annullare") -> OutgoingMessage:
    return OutgoingMessage(message_id=f"sms.{i:04d}@attiva", to_email="", to_name=None, from_email="",
                           from_name="", subject="", html="", text=text, campaign="birthday_sms", to_phone=to)


def stored(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/state/twilio", timeout=10).json()["messages"]


# ---- the channel -------------------------------------------------------------------------------------


def test_accepted_is_sent_with_the_marker_and_the_callback_carrying_our_id(sandbox) -> None:
    ch = channel(sandbox, status_callback="http://127.0.0.1:9/twilio/sms/status")
    delivery = ch.send(sms(1))
    assert delivery.ok and delivery.status == 201 and delivery.provider_id.startswith("SM")
    [message] = stored(sandbox)
    assert message["to"] == "+393331234567" and message["from"] == FROM and message["num_segments"] == "1"
    assert message["body"] == f"Ciao! STOP per annullare\n{marker(sms(1).message_id)}"
    assert message["status_callback"] == "http://127.0.0.1:9/twilio/sms/status?attiva_message_id=sms.0001%40attiva"
    ch.close()


def test_twilios_answers_become_the_engines_verdicts_and_the_token_never_shows(sandbox, caplog) -> None:
    ch = channel(sandbox)
    invalid = ch.send(sms(2, to="+39 333 12"))
    assert not invalid.ok and invalid.permanent and not invalid.stop and "21211" in invalid.reason
    region = ch.send(sms(3, to="+850212345678"))
    assert region.permanent and "21408" in region.reason
    opted_out = ch.send(sms(4, to="+393330000610"))
    assert opted_out.opted_out and opted_out.permanent and "21610" in opted_out.reason
    no_number = ch.send(sms(5, to=""))
    assert no_number.permanent and "no phone number" in no_number.reason
    too_long = channel(sandbox, max_segments=1).send(sms(6, text="€" * 100))
    assert too_long.permanent and "2 GSM-7 segments" in too_long.reason and "max_segments of 1" in too_long.reason
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "twilio", "error_rate": 1},
                  timeout=10).raise_for_status()
    server_error = ch.send(sms(7))
    assert not server_error.permanent and "outcome unknown" in server_error.reason  # looked up, never resent blindly
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    wrong = TwilioSmsChannel(f"{sandbox}/twilio", SANDBOX_TWILIO_ACCOUNT_SID, Secret("wrong-token-123"),
                             from_number=FROM, timeout=10)
    refused = wrong.send(sms(8))
    assert refused.stop and refused.status == 401 and "20003" in refused.reason
    assert "wrong-token-123" not in repr(wrong) + str(refused) + caplog.text and TOKEN not in caplog.text
    assert stored(sandbox) == []  # none of them was accepted
    ch.close()
    wrong.close()


def test_429_is_waited_for_then_sent(sandbox) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "twilio",
                                                      "rate_limits": {"requests": 1, "window_seconds": 1}},
                  timeout=10).raise_for_status()
    ch = channel(sandbox)
    first, second = ch.send(sms(1)), ch.send(sms(2))
    assert first.ok and second.ok
    counters = requests.get(f"{sandbox}/_sandbox/state/twilio", timeout=10).json()["requests"]["responses"]
    assert counters.get("429", 0) >= 1 and counters["201"] == 2
    impatient = channel(sandbox, rate_limit_wait=0).send(sms(3))
    assert not impatient.ok and not impatient.permanent and impatient.status == 429 and impatient.retry_after >= 1
    ch.close()


def test_the_lookup_finds_an_accepted_message_by_number_and_marker(sandbox) -> None:
    ch = channel(sandbox)
    for i in range(1, 4):
        assert ch.send(sms(i)).ok
    sids = {m["body"][-9:]: m["sid"] for m in stored(sandbox)}
    since = datetime.now(UTC).replace(tzinfo=None)
    found = ch.accepted([sms(2).message_id, sms(9).message_id, "unknown-number"],
                        {sms(2).message_id: ("+393331234567", since), sms(9).message_id: ("+393331234567", since)})
    assert found == {sms(2).message_id: sids[marker(sms(2).message_id)], sms(9).message_id: None}
    ch.close()


def test_the_signature_is_twilios_own_on_its_published_vectors() -> None:
    from activations.destinations.twilio.signature import signature_ok
    from sandbox.auth import twilio_signature

    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
              ("From", "+14158675309"), ("To", "+18005551212")]
    assert signature("12345", url, params) == twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
    assert signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert signature_ok("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_ok("12345", url + "&extra=1", params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_ok("12345", url, params, None) and not signature_ok("", url, params, "x")


def test_segments_are_counted_as_carriers_count_them() -> None:
    assert segments("a" * 160) == ("GSM-7", 1) and segments("a" * 161) == ("GSM-7", 2)
    assert segments("è" * 160) == ("GSM-7", 1)  # Italian accents are in the GSM-7 alphabet
    assert segments("€" * 80) == ("GSM-7", 1) and segments("€" * 81) == ("GSM-7", 2)  # € counts two
    assert segments("ciao 😀") == ("UCS-2", 1) and segments("ş" * 71) == ("UCS-2", 2)


def test_an_sms_template_renders_text_only_and_must_say_stop(tmp_path) -> None:
    rendered = Templates().render("birthday_sms", sample_context(campaign="birthday_sms"))
    assert rendered.subject == "" and rendered.html == "" and "STOP per annullare" in rendered.text
    assert segments(rendered.text.strip() + "\n" + marker("x")) == ("GSM-7", 1)
    (tmp_path / "quiet").mkdir()
    (tmp_path / "quiet" / "sms.txt.j2").write_text("Ciao {{ customer.first_name }}!", encoding="utf-8")
    with pytest.raises(TemplateError, match="must say how to opt out"):
        Templates(tmp_path).validate("quiet", sample_context())


def test_the_channel_file_points_sms_at_the_sandbox_and_serve() -> None:
    ch = channel_from_config("sms", {"type": "twilio_sms", "from_number": FROM}, {"ATTIVA_SANDBOX_PORT": "8765"})
    assert ch.base_url == "http://127.0.0.1:8765/twilio" and ch.account_sid == SANDBOX_TWILIO_ACCOUNT_SID
    assert ch.status_callback == "http://127.0.0.1:8766/twilio/sms/status" and ch.activity_lag == 0
    ch.close()
    from activations.messaging.channels import ChannelConfigError

    with pytest.raises(ChannelConfigError, match="ATTIVA_SMS_TOKEN"):
        channel_from_config("sms", {"type": "twilio_sms", "from_number": FROM}, {"ATTIVA_SMS_URL": "https://api.twilio.com"})
    with pytest.raises(ChannelConfigError, match="account_sid"):
        channel_from_config("sms", {"type": "twilio_sms", "from_number": FROM},
                            {"ATTIVA_SMS_URL": "https://api.twilio.com", "ATTIVA_SMS_TOKEN": "t"})
    with pytest.raises(ChannelConfigError, match="secrets do not go in the file"):
        channel_from_config("sms", {"type": "twilio_sms", "from_number": FROM, "token": "x"}, {})
    real = channel_from_config("sms", {"type": "twilio_sms", "messaging_service_sid": "MG" + "a" * 32,
                                       "account_sid": "AC" + "b" * 32},
                               {"ATTIVA_SMS_URL": "https://api.twilio.com", "ATTIVA_SMS_TOKEN": "t"})
    assert real.activity_lag == 300 and real.form(sms(1))["MessagingServiceSid"] == "MG" + "a" * 32
    real.close()


# ---- the engine ----------------------------------------------------------------------------------------


def make_trigger(*, quiet: QuietHours | None = None, expires=timedelta(days=1)) -> Trigger:
    return Trigger(name="trg_birthday_sms", relation="triggers.trg_sms", campaign="birthday_sms", channel="sms",
                   consent="consent_sms", marketing=True, priority=50, holdout=0.0, expires_after=expires,
                   quiet_hours=quiet, steps=(Step(1, "birthday_sms", timedelta(0)),), columns=COLUMNS)


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts; create schema triggers")
    con.execute("""create table marts.customers (customer_id varchar, email varchar, phone varchar, first_name varchar,
                   last_name varchar, city varchar, country varchar, timezone varchar, consent_sms boolean)""")
    con.execute("create table marts.products (product_id varchar, product_name varchar, price double)")
    con.execute("""create table marts.customer_recommendations (customer_id varchar, recommendation_rank integer,
                   product_id varchar, score double, reason varchar)""")
    con.execute("""create table triggers.trg_sms (trigger_key varchar, customer_id varchar, occurred_at timestamp,
                   exit_reason varchar, first_name varchar)""")
    yield con
    con.close()


def add(con, customer_id: str, phone: str | None, *, consent: bool | None = True, key: str | None = None,
        at: datetime = NOW - timedelta(hours=1)) -> None:
    if not con.execute("select 1 from marts.customers where customer_id = ?", [customer_id]).fetchall():
        con.execute("insert into marts.customers values (?, null, ?, 'Giulia', 'Rossi', 'Bologna', 'IT', "
                    "'Europe/Rome', ?)", [customer_id, phone, consent])
    con.execute("insert into triggers.trg_sms values (?, ?, ?, null, 'Giulia')",
                [key or f"{customer_id}:1", customer_id, at.replace(tzinfo=None)])


def ledger(con) -> dict[str, tuple[str, str | None]]:
    return {k: (s, r) for k, s, r in con.execute(
        "select trigger_key, state, reason from activation.message_ledger").fetchall()}


def test_a_pass_sends_to_consenting_numbers_only_and_a_bad_number_fails_alone(sandbox, warehouse) -> None:
    add(warehouse, "ok", "+393331111111")
    add(warehouse, "bad", "+3933")
    add(warehouse, "no_consent", "+393332222222", consent=False)
    add(warehouse, "unknown_consent", "+393332222223", consent=None)
    add(warehouse, "no_phone", None)
    add(warehouse, "stop", "+393330000610")
    ch = channel(sandbox)
    report = run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW)
    found = ledger(warehouse)
    assert found["ok:1"] == ("sent", None)
    assert found["bad:1"][0] == "failed" and "21211" in found["bad:1"][1]
    assert found["no_consent:1"] == ("suppressed", "no consent at send time")
    assert found["unknown_consent:1"] == ("suppressed", "no consent at send time")
    assert found["no_phone:1"] == ("suppressed", "no phone number")
    assert found["stop:1"][0] == "suppressed" and found["stop:1"][1].startswith("opted out of SMS:")
    assert [m["to"] for m in stored(sandbox)] == ["+393331111111"]  # never without consent_sms
    assert report.outcomes["birthday_sms"]["sent"] == 1
    # Twilio's 21610 is remembered: the number's next SMS is suppressed before any call.
    assert warehouse.execute("select count(*) from activation.sms_suppression_list where phone_sha256 = ?",
                             [feedback.phone_sha256("+393330000610")]).fetchone()[0] == 1
    add(warehouse, "stop", "+393330000610", key="stop:2")
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "twilio"}, timeout=10)
    run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=5))
    assert ledger(warehouse)["stop:2"] == ("suppressed", "opted out of SMS: opted out (Twilio 21610) on 2026-11-20")
    assert requests.get(f"{sandbox}/_sandbox/state/twilio", timeout=10).json()["requests"]["requests"] == 0
    ch.close()


def test_a_429_the_pass_cannot_wait_for_is_retried_by_the_next_pass(sandbox, warehouse) -> None:
    add(warehouse, "c1", "+393331111111")
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "twilio", "rate_limit_rate": 1},
                  timeout=10).raise_for_status()
    ch = channel(sandbox, rate_limit_wait=0)
    run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW)
    state, reason = ledger(warehouse)["c1:1"]
    assert state == "planned" and "will retry" in reason and "429" in reason
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=5))
    assert ledger(warehouse)["c1:1"] == ("sent", None) and len(stored(sandbox)) == 1
    ch.close()


class _CrashAfter:
    """A channel whose answer never arrives: the request left (or not), the pass learns nothing."""

    recipient = "phone"

    def __init__(self, real: TwilioSmsChannel, really_send: bool) -> None:
        self.real, self.really_send = real, really_send

    def send(self, message: OutgoingMessage) -> Delivery:
        if self.really_send:
            assert self.real.send(message).ok
        return transient("twilio: outcome unknown, no answer (twilio: timed out (ReadTimeout))")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("accepted", [True, False])
def test_an_unknown_outcome_is_looked_up_never_duplicated(sandbox, warehouse, accepted) -> None:
    add(warehouse, "c1", "+393331111111")
    ch = channel(sandbox)
    run_pass(warehouse, [make_trigger()], {"sms": _CrashAfter(ch, accepted)}, Templates(), NO_CAPS, NOW)
    assert ledger(warehouse)["c1:1"][0] == "unknown"
    report = run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=10))
    [message] = stored(sandbox)  # exactly once, whether the first request had reached Twilio or not
    state, reason = ledger(warehouse)["c1:1"]
    assert state == "sent"
    provider = warehouse.execute("select provider_id from activation.message_ledger").fetchone()[0]
    assert provider == message["sid"]
    if accepted:
        assert report.recovered.confirmed == 1 and "confirmed by sms" in reason
    else:
        assert report.recovered.resent == 1
    ch.close()


def test_sms_quiet_hours_are_strict(sandbox, warehouse) -> None:
    night = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 23:30 in Rome
    add(warehouse, "soon", "+393331111111", key="soon:1", at=night - timedelta(minutes=10))
    add(warehouse, "later", "+393331111112", key="later:1", at=night - timedelta(minutes=10))
    settings = Settings(caps=Caps(None, None), quiet_hours=QuietHours(clock_time(21), clock_time(8)))
    short = make_trigger(expires=timedelta(hours=2))
    run_pass(warehouse, [short], {"sms": channel(sandbox)}, Templates(), settings, night)
    state, reason = ledger(warehouse)["soon:1"]
    assert state == "suppressed" and reason == ("quiet hours in the customer's timezone until 07:00 UTC, after the "
                                                "step expires: an SMS is never sent in quiet hours")
    warehouse.execute("delete from activation.message_ledger")
    run_pass(warehouse, [make_trigger()], {"sms": channel(sandbox)}, Templates(), settings, night)  # quiet: none
    assert ledger(warehouse)["later:1"] == ("planned", "quiet hours in the customer's timezone")
    assert stored(sandbox) == []


# ---- status callbacks and replies through `attiva serve` ----------------------------------------------


@pytest.fixture
def serve(tmp_path):
    app = create_app(KeysConfig([]), tmp_path / "serving", tmp_path / "landing", clock=lambda: NOW)
    with running_server(app) as url:
        yield url


def _wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def test_status_callbacks_are_verified_and_land_as_sms_events(sandbox, serve, warehouse, tmp_path) -> None:
    url = f"{serve}/twilio/sms/status?attiva_message_id=m1%40attiva"
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": "+393331111111"}
    forged = requests.post(url, data=params, headers={"X-Twilio-Signature": signature("wrong", url, params.items())},
                           timeout=10)
    assert forged.status_code == 403
    assert requests.post(url, data=params, timeout=10).status_code == 403  # unsigned
    other = f"{serve}/twilio/esp/status"
    assert requests.post(other, data=params, headers={"X-Twilio-Signature": signature(TOKEN, other, params.items())},
                         timeout=10).status_code == 404
    assert not (tmp_path / "landing" / "_sms_feedback").exists()  # nothing written for a refused post

    ch = channel(sandbox, status_callback=f"{serve}/twilio/sms/status")
    add(warehouse, "c1", "+393331111111")
    add(warehouse, "c2", "+393330000030")  # the sandbox reports this one undelivered (30003)
    run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW)
    callbacks = _wait_for(lambda: (lambda found: found if len(found) >= 4 else None)(
        requests.get(f"{sandbox}/_sandbox/state/twilio", timeout=10).json()["callbacks"]))
    assert {c["answered"] for c in callbacks} == {200}
    assert sorted(c["status"] for c in callbacks) == ["delivered", "sent", "sent", "undelivered"]
    assert feedback.load_sms_feedback(warehouse, NOW) == 4
    events = warehouse.execute("""select l.customer_id, e.event_type, e.error_code from activation.sms_events as e
                                  join activation.message_ledger as l on l.message_id = e.message_id
                                  where e.event_type in ('delivered', 'undelivered') order by 1""").fetchall()
    assert events == [("c1", "delivered", None), ("c2", "undelivered", "30003")]
    assert feedback.load_sms_feedback(warehouse, NOW) == 0  # each event once
    ch.close()


def test_an_inbound_stop_opts_the_number_out_of_every_later_sms(sandbox, serve, warehouse, tmp_path) -> None:
    ch = channel(sandbox)
    add(warehouse, "c1", "+393334444444")
    answer = requests.post(f"{sandbox}/_sandbox/twilio/inbound", json={
        "from": "+393334444444", "body": "Stop", "url": f"{serve}/twilio/sms/inbound"}, timeout=10).json()
    assert answer["answered"] == 200 and answer["opted_out"]
    consent = list((tmp_path / "landing" / "consent" / "sms_stop").rglob("*.jsonl"))
    assert len(consent) == 1 and '"channel":"sms","status":"revoked"' in consent[0].read_text()
    # The revocation follows the landing contract's `consent` source: ingestion takes it as it is, by phone,
    # for the 360's consent_sms (int_customers__consent) at the next build; the _sms_feedback folder is not read.
    from activations.ingest import load_landing

    loaded = load_landing(tmp_path / "landing", tmp_path / "ingested.duckdb")
    assert not loaded.failed_files and sum(f.rows_quarantined for f in loaded.files) == 0
    with duckdb.connect(str(tmp_path / "ingested.duckdb"), read_only=True) as ingested:
        assert ingested.execute("select phone, channel, status, source from raw.consent").fetchall() == [
            ("+393334444444", "sms", "revoked", "sms_stop")]
    run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW)
    assert ledger(warehouse)["c1:1"] == ("suppressed", "opted out of SMS: replied STOP on 2026-11-20")
    assert stored(sandbox) == []
    # A START afterwards takes the number off the list again (consent itself is not granted by it).
    requests.post(f"{sandbox}/_sandbox/twilio/inbound", json={
        "from": "+393334444444", "body": "START", "url": f"{serve}/twilio/sms/inbound"}, timeout=10)
    add(warehouse, "c1", "+393334444444", key="c1:2")
    run_pass(warehouse, [make_trigger()], {"sms": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=5))
    assert ledger(warehouse)["c1:2"] == ("sent", None)
    ch.close()
