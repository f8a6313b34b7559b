"""Mobile push through FCM's HTTP v1 API, over real loopback HTTP: the channel against the sandbox's FCM, and the
engine's verdicts (sent, token retired on UNREGISTERED and never tried again, failed on INVALID_ARGUMENT while
the batch goes on, 429 / 503 waited for, 5xx and timeouts unknown and never resent, consent, no token, strict
quiet hours), with the access token never in a log, a reason or the warehouse."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

import duckdb
import pytest
import requests

from activations.destinations.base import Secret
from activations.destinations.fcm.messages import FcmPushChannel
from activations.messaging import push
from activations.messaging.channels import SANDBOX_FCM_PROJECT_ID, ChannelConfigError, channel_from_config
from activations.messaging.delivery import OutgoingMessage
from activations.messaging.policy import Caps, QuietHours, Settings, Step, Trigger
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from sandbox import running_sandbox

pytestmark = pytest.mark.xdist_group("messaging_fcm")

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 13:00 in Rome
NO_CAPS = Settings(caps=Caps(None, None), quiet_hours=None)
ACCESS_TOKEN = "sandbox-fcm-token"
GONE = "dGVzdC1nb25lOkFQQTkxYkhVbnJlZ2lzdGVyZWQtdG9rZW4"  # the sandbox answers UNREGISTERED for it
COLUMNS = ("trigger_key", "customer_id", "occurred_at", "exit_reason", "cart_products_json")


def device(n: int) -> str:
    """A well-formed FCM registration token (the sandbox checks the shape)."""
    return f"dev{n:04d}:APA91b" + "x" * 40 + f"{n:04d}"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), fcm_unregistered_tokens=(GONE,)) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(sandbox, tmp_path, monkeypatch):
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "fcm"}, timeout=10).raise_for_status()
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()
    monkeypatch.setenv("ATTIVA_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("ATTIVA_SANDBOX_PORT", sandbox.rsplit(":", 1)[1])
    monkeypatch.delenv("ATTIVA_PUSH_TOKEN", raising=False)
    monkeypatch.delenv("ATTIVA_PUSH_URL", raising=False)


def faults(sandbox: str, **spec) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "fcm", **spec}, timeout=10).raise_for_status()


def channel(sandbox: str, token: str = ACCESS_TOKEN, **options) -> FcmPushChannel:
    return FcmPushChannel(f"{sandbox}/fcm", SANDBOX_FCM_PROJECT_ID, Secret(token), timeout=options.pop("timeout", 10),
                          **options)


def note(i: int = 1, tokens: tuple[str, ...] = (device(1),)) -> OutgoingMessage:
    return OutgoingMessage(message_id=f"push.{i:04d}@attiva", to_email="", to_name=None, from_email="",
                           from_name="", subject="Il tuo carrello ti aspetta", html="",
                           text="Miscela Classica 250g: tocca per completare l'acquisto.\n",
                           campaign="abandoned_cart_push", to_tokens=tokens)


def state(sandbox: str) -> dict:
    return requests.get(f"{sandbox}/_sandbox/state/fcm", timeout=10).json()


# ---- the channel -------------------------------------------------------------------------------------


def test_accepted_is_sent_with_the_title_the_text_and_our_id(sandbox) -> None:
    ch = channel(sandbox)
    delivery = ch.send(note(1))
    assert delivery.ok and delivery.status == 200
    assert delivery.provider_id.startswith(f"projects/{SANDBOX_FCM_PROJECT_ID}/messages/")
    [message] = state(sandbox)["messages"]
    assert message["token"] == device(1) and message["name"] == delivery.provider_id
    assert message["notification"] == {"title": "Il tuo carrello ti aspetta",
                                       "body": "Miscela Classica 250g: tocca per completare l'acquisto."}
    assert message["data"] == {"attiva_message_id": "push.0001@attiva", "campaign": "abandoned_cart_push"}
    assert [(r.outcome, r.token_sha256) for r in delivery.push_results] == [("sent", push.token_sha256(device(1)))]
    ch.close()


def test_fcms_answers_become_the_engines_verdicts_and_no_token_shows(sandbox, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ch = channel(sandbox)
    invalid = ch.send(note(2, ("not-a-token",)))
    assert not invalid.ok and invalid.permanent and not invalid.stop and "INVALID_ARGUMENT" in invalid.reason
    gone = ch.send(note(3, (GONE,)))
    assert gone.permanent and "UNREGISTERED" in gone.reason and gone.retired_tokens == (GONE,)
    assert gone.push_results[0].outcome == "retired"
    faults(sandbox, error_rate=1)
    internal = ch.send(note(4))
    assert not internal.ok and not internal.permanent and "outcome unknown" in internal.reason
    assert "INTERNAL" in internal.reason
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    wrong = channel(sandbox, token="wrong-access-token-123")
    refused = wrong.send(note(5))
    assert refused.stop and refused.status == 401
    other_project = FcmPushChannel(f"{sandbox}/fcm", "someone-elses-app", Secret(ACCESS_TOKEN), timeout=10)
    assert other_project.send(note(6)).stop
    everything = repr(wrong) + repr(ch) + " ".join(str(d.reason) for d in (invalid, gone, internal, refused))
    everything += " ".join(str(r.detail) for d in (invalid, gone, internal) for r in d.push_results)
    for secret in ("wrong-access-token-123", ACCESS_TOKEN, GONE):
        assert secret not in everything and secret not in caplog.text
    assert state(sandbox)["messages"] == []  # none of them was accepted
    for c in (ch, wrong, other_project):
        c.close()


def test_a_429_or_503_is_waited_for_then_sent_or_left_for_the_next_pass(sandbox) -> None:
    faults(sandbox, rate_limits={"requests": 1, "window_seconds": 1})
    ch = channel(sandbox)
    first, second = ch.send(note(1)), ch.send(note(2))
    assert first.ok and second.ok  # the second waited for FCM's Retry-After
    counters = state(sandbox)["requests"]["responses"]
    assert counters.get("429", 0) >= 1 and counters["200"] == 2
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    faults(sandbox, rate_limit_rate=1)  # FCM overloaded: 503 UNAVAILABLE with Retry-After, every time
    busy = ch.send(note(3))
    assert not busy.ok and not busy.permanent and busy.status == 503 and busy.retry_after >= 1
    assert "outcome unknown" not in busy.reason and busy.push_results[0].outcome == "retry"
    assert state(sandbox)["requests"]["responses"]["503"] == 3  # tried three times, waiting in between
    ch.close()


def test_an_uninstalled_app_turns_its_token_unregistered(sandbox) -> None:
    ch = channel(sandbox)
    assert ch.send(note(1, (device(7),))).ok
    answer = requests.post(f"{sandbox}/_sandbox/fcm/unregister", json={"tokens": [device(7)]}, timeout=10)
    assert answer.json() == {"unregistered": 1}
    after = ch.send(note(2, (device(7),)))
    assert not after.ok and after.retired_tokens == (device(7),) and "UNREGISTERED" in after.reason
    assert state(sandbox)["unregistered"] == {GONE: "configured", device(7): "uninstalled"}
    ch.close()


def test_several_devices_sent_when_one_confirmed_each_result_kept(sandbox) -> None:
    ch = channel(sandbox)
    delivery = ch.send(note(1, (device(1), GONE, "bad token")))
    assert delivery.ok and delivery.retired_tokens == (GONE,)
    assert [r.outcome for r in delivery.push_results] == ["sent", "retired", "failed"]
    refused = ch.send(note(2, (GONE, "bad token")))
    assert not refused.ok and refused.permanent and "every device refused it (2 tokens)" in refused.reason
    ch.close()


def test_the_channel_file_points_push_at_the_sandbox_and_keeps_secrets_out() -> None:
    ch = channel_from_config("push", {"type": "fcm_push", "ttl": "1d"}, {"ATTIVA_SANDBOX_PORT": "8765"})
    assert ch.base_url == "http://127.0.0.1:8765/fcm" and ch.project_id == SANDBOX_FCM_PROJECT_ID
    assert ch.body(note(1), device(1))["message"]["android"] == {"ttl": "86400s"}
    ch.close()
    with pytest.raises(ChannelConfigError, match="ATTIVA_PUSH_TOKEN"):
        channel_from_config("push", {"type": "fcm_push"}, {"ATTIVA_PUSH_URL": "https://fcm.googleapis.com"})
    with pytest.raises(ChannelConfigError, match="project_id"):
        channel_from_config("push", {"type": "fcm_push"},
                            {"ATTIVA_PUSH_URL": "https://fcm.googleapis.com", "ATTIVA_PUSH_TOKEN": "t"})
    with pytest.raises(ChannelConfigError, match="secrets do not go in the file"):
        channel_from_config("push", {"type": "fcm_push", "token": "x"}, {})
    real = channel_from_config("push", {"type": "fcm_push", "project_id": "emporio-nove-app"},
                               {"ATTIVA_PUSH_URL": "https://fcm.googleapis.com", "ATTIVA_PUSH_TOKEN": "ya29.t"})
    assert real.send_path == "/v1/projects/emporio-nove-app/messages:send"
    real.close()


# ---- the engine ----------------------------------------------------------------------------------------


def make_trigger(*, quiet: QuietHours | None = None, expires=timedelta(days=1)) -> Trigger:
    return Trigger(name="trg_abandoned_cart_push", relation="triggers.trg_push", campaign="abandoned_cart_push",
                   channel="push", consent="consent_push", marketing=True, priority=85, holdout=0.0,
                   expires_after=expires, quiet_hours=quiet, steps=(Step(1, "abandoned_cart_push", timedelta(0)),),
                   columns=COLUMNS)


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts; create schema triggers")
    con.execute("""create table marts.customers (customer_id varchar, email varchar, phone varchar, first_name varchar,
                   last_name varchar, city varchar, country varchar, timezone varchar, consent_push boolean)""")
    con.execute("""create table marts.customer_push_tokens (customer_id varchar, push_token varchar, platform varchar,
                   app_version varchar, installation_id varchar, registered_at timestamp)""")
    con.execute("create table marts.products (product_id varchar, product_name varchar, price double)")
    con.execute("""create table marts.customer_recommendations (customer_id varchar, recommendation_rank integer,
                   product_id varchar, score double, reason varchar)""")
    con.execute("""create table triggers.trg_push (trigger_key varchar, customer_id varchar, occurred_at timestamp,
                   exit_reason varchar, cart_products_json varchar)""")
    yield con
    con.close()


def add(con, customer_id: str, tokens: tuple[str, ...] = (), *, consent: bool | None = True, key: str | None = None,
        at: datetime = NOW - timedelta(hours=1)) -> None:
    if not con.execute("select 1 from marts.customers where customer_id = ?", [customer_id]).fetchall():
        con.execute("insert into marts.customers values (?, 'a@example.it', null, 'Giulia', 'Rossi', 'Bologna', 'IT', "
                    "'Europe/Rome', ?)", [customer_id, consent])
        for n, token in enumerate(tokens):
            con.execute("insert into marts.customer_push_tokens values (?, ?, 'android', '4.2.0', ?, ?)",
                        [customer_id, token, f"{customer_id}-{n}", (NOW - timedelta(days=n)).replace(tzinfo=None)])
    con.execute("insert into triggers.trg_push values (?, ?, ?, null, ?)",
                [key or f"{customer_id}:1", customer_id, at.replace(tzinfo=None),
                 '[{"product_id": "P1", "name": "Moka Express", "price": 29.0, "quantity": 1}]'])


def ledger(con) -> dict[str, tuple[str, str | None]]:
    return {k: (s, r) for k, s, r in con.execute(
        "select trigger_key, state, reason from activation.message_ledger").fetchall()}


def test_a_pass_sends_to_consenting_app_users_only_and_retires_dead_tokens(sandbox, warehouse, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    add(warehouse, "ok", (device(1),))
    add(warehouse, "two", (device(2), GONE))  # a phone in use and an uninstalled app's stale token
    add(warehouse, "bad", ("not-a-token",))
    add(warehouse, "gone", (GONE,))
    add(warehouse, "no_consent", (device(3),), consent=False)
    add(warehouse, "unknown_consent", (device(4),), consent=None)
    add(warehouse, "no_app", ())
    ch = channel(sandbox)
    report = run_pass(warehouse, [make_trigger()], {"push": ch}, Templates(), NO_CAPS, NOW)
    found = ledger(warehouse)
    assert found["ok:1"] == ("sent", None) and found["two:1"] == ("sent", None)
    assert found["bad:1"][0] == "failed" and "INVALID_ARGUMENT" in found["bad:1"][1]  # and the batch went on
    assert found["gone:1"][0] == "failed" and "UNREGISTERED" in found["gone:1"][1]
    assert found["no_consent:1"] == ("suppressed", "no consent at send time")
    assert found["unknown_consent:1"] == ("suppressed", "no consent at send time")
    assert found["no_app:1"] == ("suppressed", "no push token")
    assert sorted(m["token"] for m in state(sandbox)["messages"]) == [device(1), device(2)]  # never without consent
    assert report.outcomes["abandoned_cart_push"]["sent"] == 2
    # Each device's answer is kept, by the token's hash; the stale token is retired once, though two customers had it.
    results = warehouse.execute("select token_sha256, outcome from activation.push_deliveries").fetchall()
    assert (push.token_sha256(GONE), "retired") in results and (push.token_sha256(device(2)), "sent") in results
    assert warehouse.execute("select token_sha256, reason from activation.push_tokens_retired").fetchall() == [
        (push.token_sha256(GONE), "unregistered")]
    # The next pass never tries the retired token again: "gone" has no token left, "two" only its live phone.
    add(warehouse, "gone", key="gone:2")
    add(warehouse, "two", key="two:2")
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "fcm"}, timeout=10)
    run_pass(warehouse, [make_trigger()], {"push": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=5))
    assert ledger(warehouse)["gone:2"] == ("suppressed", "no push token")
    assert ledger(warehouse)["two:2"] == ("sent", None)
    after = state(sandbox)
    assert [m["token"] for m in after["messages"]] == [device(2)] and after["requests"]["requests"] == 1
    stored = " ".join(str(r) for r in warehouse.execute(
        "select * from activation.message_ledger, activation.push_deliveries").fetchall())
    for secret in (ACCESS_TOKEN, GONE, device(1)):
        assert secret not in stored and secret not in caplog.text
    ch.close()


def test_a_429_the_pass_cannot_wait_for_is_retried_by_the_next_pass(sandbox, warehouse) -> None:
    add(warehouse, "c1", (device(1),))
    faults(sandbox, rate_limits={"requests": 1, "window_seconds": 60})
    ch = channel(sandbox, rate_limit_wait=0)
    assert ch.send(note(9, (device(9),))).ok  # takes the window's one slot
    run_pass(warehouse, [make_trigger()], {"push": ch}, Templates(), NO_CAPS, NOW)
    state_, reason = ledger(warehouse)["c1:1"]
    assert state_ == "planned" and "will retry" in reason and "QUOTA_EXCEEDED" in reason
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    run_pass(warehouse, [make_trigger()], {"push": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=5))
    assert ledger(warehouse)["c1:1"] == ("sent", None)
    ch.close()


@pytest.mark.parametrize("fault", [{"error_rate": 1}, {"timeout_rate": 1, "timeout_seconds": 2}])
def test_a_5xx_or_a_timeout_is_unknown_never_marked_sent_nor_resent(sandbox, warehouse, fault) -> None:
    add(warehouse, "c1", (device(1),))
    faults(sandbox, **fault)
    ch = channel(sandbox, timeout=0.5)
    run_pass(warehouse, [make_trigger()], {"push": ch}, Templates(), NO_CAPS, NOW)
    state_, reason = ledger(warehouse)["c1:1"]
    assert state_ == "unknown" and "outcome unknown" in reason
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "fcm"}, timeout=10)
    report = run_pass(warehouse, [make_trigger()], {"push": ch}, Templates(), NO_CAPS, NOW + timedelta(minutes=10))
    state_, reason = ledger(warehouse)["c1:1"]
    assert state_ == "unknown" and "push cannot be asked, so it is not sent again (at-most-once)" in reason
    assert state(sandbox)["requests"]["requests"] == 0 and report.recovered.unknown == 1
    ch.close()


def test_push_quiet_hours_are_strict(sandbox, warehouse) -> None:
    night = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 23:30 in Rome
    add(warehouse, "soon", (device(1),), key="soon:1", at=night - timedelta(minutes=10))
    add(warehouse, "later", (device(2),), key="later:1", at=night - timedelta(minutes=10))
    settings = Settings(caps=Caps(None, None), quiet_hours=QuietHours(clock_time(21), clock_time(8)))
    run_pass(warehouse, [make_trigger(expires=timedelta(hours=2))], {"push": channel(sandbox)}, Templates(),
             settings, night)
    state_, reason = ledger(warehouse)["soon:1"]
    assert state_ == "suppressed" and reason == ("quiet hours in the customer's timezone until 07:00 UTC, after the "
                                                 "step expires: a push is never sent in quiet hours")
    warehouse.execute("delete from activation.message_ledger")
    run_pass(warehouse, [make_trigger()], {"push": channel(sandbox)}, Templates(), settings, night)  # quiet: none
    assert ledger(warehouse)["later:1"] == ("planned", "quiet hours in the customer's timezone")
    assert state(sandbox)["messages"] == []
