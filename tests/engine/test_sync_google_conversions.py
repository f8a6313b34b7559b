"""Conversions to Google Ads (Data Manager events:ingest) through run_sync, over real HTTP to the sandbox:
sent once with the order id as transactionId, never again; ads consent honoured; a refused event set aside
with Google's reason while the rest go; 2,000 events a request; a 429 waited out; a forgotten person's
conversions never sent; the token nowhere."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pytest

from activations.destinations.base import KEY_COLUMN, RetryableError
from activations.destinations.identifiers import prepare_identifiers
from activations.engine.run import SyncRefused, run_sync
from activations.erasure import Subject, request_erasure
from activations.manifest import DEFAULT_GUARDS, Audience, Sync

from .setups import FAST_POLICY, TOKENS, forget_after_sending, requests_served, sandbox_state, sync_rejects

pytestmark = pytest.mark.xdist_group("engine")

CONVERSIONS = "conversions.conv_test"
COLUMNS = ("transaction_id", "customer_id", "email", "phone", "gclid", "event_timestamp", "event_source",
           "conversion_value", "currency", "consent_ads")
ACTION = "5001"
TYPE = "google_conversions"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def conversions_sync() -> Sync:
    audience = Audience("conv_test", CONVERSIONS, "", COLUMNS, unique_columns=("transaction_id",), layer="conversions")
    fields = {name: name for name in ("event_timestamp", "event_source", "conversion_value", "currency", "gclid")}
    return Sync(name="conv_test__google_conversions", audience=audience, destination="t_google_conversions",
                mode="insert", key="transaction_id", identifiers={"email": "email", "phone": "phone"}, fields=fields,
                consent="consent_ads", guards=dict(DEFAULT_GUARDS))


@pytest.fixture
def orders(con):
    """A conversions table shaped like conv_google_purchases; `add(n, start)` adds n orders of customers c<i>."""
    con.execute("create schema if not exists conversions")
    con.execute(f"""create or replace table {CONVERSIONS} (transaction_id varchar, customer_id varchar,
                    email varchar, phone varchar, gclid varchar, event_timestamp timestamp, event_source varchar,
                    conversion_value decimal(12, 2), currency varchar, consent_ads boolean)""")

    def add(n: int, start: int = 0, hours_ago: float = 1.0) -> None:
        when = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=hours_ago)
        con.execute(f"""insert into {CONVERSIONS}
            select 'O' || lpad(cast(i as varchar), 6, '0'), 'c' || (i % 1000), 'Person' || (i % 1000) || '@Example.com ',
                   '+39 333 ' || lpad(cast(i % 1000 as varchar), 7, '0'), null, ?::timestamp - to_seconds(i % 60),
                   'WEB', 10 + i % 7, 'EUR', true
            from range({start}, {start + n}) as t(i)""", [when])

    return add


def events_held(base: str) -> dict[str, dict]:
    action = sandbox_state(base, TYPE)["conversion_actions"].get(ACTION, {"events": {}})
    return action["events"]


def test_conversions_are_sent_once_with_ads_consent_only(sandbox, con, orders):
    orders(6)
    con.execute(f"update {CONVERSIONS} set consent_ads = false where transaction_id = 'O000005'")
    con.execute(f"update {CONVERSIONS} set gclid = 'Cj0KCQ-test', phone = null where transaction_id = 'O000004'")
    sync, client = conversions_sync(), sandbox.client(TYPE)

    first = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (first.status, first.confirmed, first.rejected, first.invalid) == ("success", 5, 0, 0), first
    held = events_held(sandbox.base)
    assert set(held) == {f"O{i:06d}" for i in range(5)}  # never the one without ads consent
    two = held["O000002"]
    assert (two["conversionValue"], two["currency"], two["eventSource"]) == (12.0, "EUR", "WEB")
    # The address is stripped of all whitespace and lower-cased before hashing, as Google asks.
    assert two["userData"]["emailAddress"] == [sha256("person2@example.com")]
    assert two["userData"]["phoneNumber"] == [sha256("+393330000002")]
    assert held["O000004"]["gclid"] == "Cj0KCQ-test" and list(held["O000004"]["userData"]) == ["emailAddress"]
    assert held["O000003"]["gclid"] is None

    before = requests_served(sandbox.base, TYPE)
    second = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (second.status, second.planned, second.sent) == ("success", 0, 0)
    assert requests_served(sandbox.base, TYPE) == before

    # A changed order is not sent again (insert only), a new one is.
    con.execute(f"update {CONVERSIONS} set conversion_value = 99 where transaction_id = 'O000000'")
    orders(1, start=6)
    third = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (third.status, third.confirmed) == ("success", 1), third
    assert events_held(sandbox.base)["O000000"]["conversionValue"] == 10.0
    assert sandbox_state(sandbox.base, TYPE)["conversion_actions"][ACTION]["duplicates"] == 0

    with pytest.raises(SyncRefused, match="offers no full resync"):
        run_sync(con, sync, client, policy=FAST_POLICY, full_resync=True)


def test_refused_events_are_rejected_with_their_reason_and_the_rest_go(sandbox, con, orders):
    orders(40)
    orders(1, start=40, hours_ago=-24)  # in the future: set aside before sending
    sandbox.faults(TYPE, row_reject_rate=0.1, seed=3)
    result = run_sync(con, conversions_sync(), sandbox.client(TYPE), policy=FAST_POLICY)
    held = set(events_held(sandbox.base))
    rejects = sync_rejects(con, "conv_test__google_conversions")
    assert result.status == "delivered_except_invalid" and result.confirmed == len(held), result
    assert 1 < len(rejects) < 20 and held.isdisjoint(rejects) and len(held) + len(rejects) == 41
    assert "in the future" in rejects.pop("O000040")
    assert all("rejected by sandbox fault injection" in reason for reason in rejects.values()), rejects


def test_two_thousand_events_a_request(sandbox, con, orders, monkeypatch):
    orders(4_500)
    client = sandbox.client(TYPE)
    sizes = []
    send = client.send
    monkeypatch.setattr(client, "send", lambda op, batch, part=None: sizes.append(batch.height) or send(op, batch, part))
    result = run_sync(con, conversions_sync(), client, policy=FAST_POLICY)
    assert (result.status, result.confirmed) == ("success", 4_500), result
    assert sorted(sizes) == [500, 2_000, 2_000] and requests_served(sandbox.base, TYPE) == 3
    assert len(events_held(sandbox.base)) == 4_500


def test_the_quota_answer_is_waited_out(sandbox, con, orders):
    """Google's 429 RESOURCE_EXHAUSTED (300 requests a minute per project) is retryable: the client waits
    the Retry-After or RetryInfo it carries, else the rest of its minute."""
    orders(3)
    client = sandbox.client(TYPE)
    sandbox.faults(TYPE, rate_limit_rate=1.0)
    batch = prepare_identifiers(con.sql(f"select transaction_id as {KEY_COLUMN}, email, phone, event_timestamp "
                                        f"from {CONVERSIONS}").pl(), client.capabilities).valid
    with pytest.raises(RetryableError) as waited:
        client.send("upsert", batch)
    assert waited.value.status == 429 and "RESOURCE_EXHAUSTED" in str(waited.value.reason)
    assert 0 < (waited.value.retry_after or 0) <= 60
    assert events_held(sandbox.base) == {}


def test_a_forgotten_persons_conversions_are_never_sent(sandbox, con, orders):
    orders(4)
    sync, client = conversions_sync(), sandbox.client(TYPE)
    request_erasure(con, "c2", Subject(customers=["c2"], emails={"person2@example.com"}), {},
                    datetime.now(UTC).replace(tzinfo=None))
    result = run_sync(con, sync, client, policy=FAST_POLICY)
    assert result.confirmed == 3
    assert set(events_held(sandbox.base)) == {"O000000", "O000001", "O000003"}


def test_forgetting_a_person_after_their_conversion_was_sent(sandbox, con, orders):
    """The Data Manager API offers no deletion of events: nothing is asked of Google. The warehouse forgets
    the hashed identifiers the sync kept (its snapshot is keyed by order id), and the order is never resent."""
    orders(4)
    forget_after_sending(con, sandbox.base, conversions_sync(), sandbox.client(TYPE), TYPE)
    assert sandbox_state(sandbox.base, TYPE)["conversion_actions"][ACTION]["received"] == 4


def test_a_server_error_is_retried_and_the_token_is_nowhere(sandbox, con, orders, table_text, caplog):
    caplog.set_level(logging.DEBUG)
    orders(30)
    sync, client = conversions_sync(), sandbox.client(TYPE)
    # Google counts a transactionId once: after a 5xx the same events are sent again within the run.
    sandbox.faults(TYPE, error_rate=0.5, seed=5)
    result = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (result.status, result.confirmed) == ("success", 30), result
    assert requests_served(sandbox.base, TYPE) > 1
    assert caplog.records
    token = TOKENS[TYPE]
    for text in (caplog.text, str(result), table_text()):
        assert token not in text
