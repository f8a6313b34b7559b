"""In-app and on-site messages end to end, over real loopback HTTP: a messaging pass on the handcrafted warehouse
sends a campaign through an `in_app` channel into the inbox beside the serving store; `attiva serve` (uvicorn on
a free port) answers it to its customer only; expiry and dismissal; displayed / clicked events land and reach
measurement.message_outcomes after ingest and dbt; the frequency caps count in-app with email; the inbox survives
a process killed mid-write."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import duckdb
import pytest

from activations.build import dbt_command, run_dbt
from activations.ingest import load_landing
from activations.messaging.delivery import OutgoingMessage, accepted
from activations.messaging.in_app import InAppChannel
from activations.messaging.inbox import INBOX_FILE, InAppMessage, Inbox, stamp
from activations.messaging.policy import Caps, QuietHours, Settings, Step, Trigger
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from activations.serve.app import create_app, running_server
from activations.serve.identity import sign_identity
from activations.serve.keys import KeysConfig
from activations.serve.store import build_serving_store
from tests.conftest import HANDCRAFTED_AS_OF
from tests.serve.conftest import IDENTITY_SECRET, KEYS, LAURA, MARIO, PAOLA, Client, copy_warehouse

pytestmark = pytest.mark.xdist_group("handcrafted")

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the handcrafted warehouse's as_of
NIGHT = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)  # 00:30 in Rome: inside the default quiet hours
QUIET = Settings(caps=Caps(None, None), quiet_hours=QuietHours(clock_time(21, 0), clock_time(8, 0)))
ONE_A_DAY = Settings(caps=Caps(1, 3), quiet_hours=None)
COLUMNS = ("trigger_key", "customer_id", "occurred_at", "exit_reason", "product_id", "product_name", "discount_pct",
           "current_price")


def banner(*, priority: int = 50, consent: str | None = "consent_profiling", channel: str = "on_site",
           campaign: str = "favourite_on_site", template: str = "favourite_on_site") -> Trigger:
    return Trigger(name=f"trg_{campaign}", relation="triggers.trg_banner", campaign=campaign, channel=channel,
                   consent=consent, marketing=True, priority=priority, holdout=0.0, expires_after=timedelta(days=30),
                   quiet_hours=None, steps=(Step(1, template, timedelta(0)),), columns=COLUMNS)


class Mailbox:
    """An email channel that accepts everything and remembers to whom."""

    recipient = "email"
    from_email, from_name = "ciao@example.it", "Shop"

    def __init__(self):
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage):
        self.sent.append(message)
        return accepted(250, message.message_id)

    def close(self) -> None:
        pass


@pytest.fixture
def warehouse(consented_warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the consented handcrafted warehouse with a banner trigger for Paola and Laura (no profiling
    consent)."""
    path = copy_warehouse(consented_warehouse, tmp_path / "warehouse.duckdb", profiling=False)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists triggers")
        con.execute("""create table triggers.trg_banner (trigger_key varchar, customer_id varchar, occurred_at timestamp,
                       exit_reason varchar, product_id varchar, product_name varchar, discount_pct double,
                       current_price double)""")
        for customer in (PAOLA, LAURA):
            con.execute("insert into triggers.trg_banner values (?, ?, ?, null, 'P-0003', 'Arabica Etiopia Sidamo', "
                        "20.0, 10.32)", [f"{customer}:promo", customer, (NIGHT - timedelta(hours=1)).replace(tzinfo=None)])
    return path


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def served(warehouse: Path, tmp_path: Path):
    """(API client, serving folder, landing folder, the server's clock): the API over a snapshot of `warehouse`."""
    serving, landing, clock = tmp_path / "serving", tmp_path / "landing", Clock(NOW)
    build_serving_store(warehouse, serving)
    app = create_app(KeysConfig(list(KEYS.values()), []), serving, landing, clock=clock, check_seconds=0,
                     identity_secret=IDENTITY_SECRET)
    with running_server(app) as url:
        yield Client(url), serving, landing, clock


def email_of(warehouse: Path, customer_id: str) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select email from marts.customers where customer_id = ?", [customer_id]).fetchone()[0]


def as_visitor(client: Client, warehouse: Path, customer_id: str) -> Client:
    """The browser key, signed in as `customer_id` (an identity token from the shop's backend)."""
    visitor = client.as_key("browser-key")
    visitor.session.headers["X-Attiva-Identity"] = sign_identity("email", email_of(warehouse, customer_id),
                                                                 IDENTITY_SECRET)
    return visitor


def send(warehouse: Path, serving: Path, triggers: list[Trigger], now: datetime, settings: Settings = QUIET,
         email: Mailbox | None = None):
    channels = {"on_site": InAppChannel(serving / INBOX_FILE, ttl=timedelta(days=3), clock=lambda: now)}
    if email is not None:
        channels["email"] = email
    with duckdb.connect(str(warehouse)) as con:
        report = run_pass(con, triggers, channels, Templates(), settings, now)
        rows = {(c, k): (s, r) for c, k, s, r in con.execute(
            "select campaign, trigger_key, state, reason from activation.message_ledger").fetchall()}
    channels["on_site"].close()
    return report, rows


def test_a_due_message_is_served_to_its_customer_only_and_quiet_hours_do_not_hold_it(served, warehouse) -> None:
    client, serving, _, clock = served
    report, ledger = send(warehouse, serving, [banner()], NIGHT)  # inside quiet hours: on-site has none
    assert ledger[("favourite_on_site", f"{PAOLA}:promo")] == ("sent", None)  # sent = available in the inbox
    assert ledger[("favourite_on_site", f"{LAURA}:promo")] == ("suppressed", "no consent at send time")
    assert report.outcomes["favourite_on_site"] == {"sent": 1, "suppressed": 1}

    clock.at = NIGHT + timedelta(minutes=1)
    by_id = client.get(f"/v1/messages/customer_id/{PAOLA}")
    assert by_id.status_code == 200, by_id.text
    [message] = by_id.json()["messages"]
    assert message["campaign"] == "favourite_on_site" and message["step"] == 1
    assert message["title"].endswith("il tuo preferito è in offerta")
    assert message["body"].startswith("Arabica Etiopia Sidamo a -20%: ora")
    assert message["link"].startswith("https://www.emporionove.it/p/P-0003?") and "utm_medium=on_site" in message["link"]
    assert message["expires_at"] == stamp(NIGHT + timedelta(days=3))

    mine = as_visitor(client, warehouse, PAOLA).get("/v1/messages/me")
    assert mine.status_code == 200 and mine.json()["messages"] == [message]
    assert mine.json()["customer_id"] is None  # a browser key never sees ids
    # Nobody else gets it: another signed-in visitor, nor a server lookup of someone else.
    assert as_visitor(client, warehouse, MARIO).get("/v1/messages/me").json()["messages"] == []
    assert client.get(f"/v1/messages/customer_id/{MARIO}").json()["messages"] == []
    # A browser key reads only the visitor itself: never by email, nor without a valid token.
    browser = client.as_key("browser-key")
    refused = browser.get(f"/v1/messages/email/{email_of(warehouse, PAOLA)}")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert browser.get("/v1/messages/me").status_code == 401
    forged = client.as_key("browser-key")
    forged.session.headers["X-Attiva-Identity"] = sign_identity("email", email_of(warehouse, PAOLA), "not-the-secret")
    assert forged.get("/v1/messages/me").status_code == 401
    assert client.as_key(None).get(f"/v1/messages/customer_id/{PAOLA}").status_code == 401
    assert client.as_key("narrow-key").get(f"/v1/messages/customer_id/{PAOLA}").status_code == 403  # not its endpoint


def test_expired_and_dismissed_messages_are_not_served(served, warehouse) -> None:
    client, serving, _, clock = served
    inbox = Inbox(serving / INBOX_FILE)

    def offer(message_id: str, priority: int, expires: datetime) -> None:
        inbox.put([InAppMessage(message_id, PAOLA, "c", 1, f"title {message_id}", "body", None, priority,
                                stamp(NOW - timedelta(hours=1)), stamp(expires))])

    offer("short", 90, NOW + timedelta(minutes=30))
    offer("long", 10, NOW + timedelta(days=2))
    offer("later", 50, NOW + timedelta(days=2))
    visitor = as_visitor(client, warehouse, PAOLA)
    shown = lambda: [m["message_id"] for m in visitor.get("/v1/messages/me").json()["messages"]]  # noqa: E731
    assert shown() == ["short", "later", "long"]  # highest priority first
    clock.at = NOW + timedelta(hours=1)
    assert shown() == ["later", "long"]  # expired: never served again
    event = {"event_id": "d-1", "event_type": "message_dismissed", "occurred_at": "2026-11-20T12:59:00Z",
             "anonymous_id": "dev-paola", "message_id": "later"}
    answer = visitor.post("/v1/events", json=event)
    assert answer.status_code == 200, answer.text
    assert shown() == ["long"]  # dismissed: gone at once, before the warehouse hears of it
    # A write of the same message id (a resend after a crash) does not bring it back.
    offer("later", 50, NOW + timedelta(days=2))
    assert shown() == ["long"]
    # Nobody else can dismiss hers: not another signed-in visitor, not an unknown device; a server key can.
    other = {**event, "event_id": "d-3", "message_id": "long"}
    assert as_visitor(client, warehouse, MARIO).post("/v1/events", json=other).status_code == 200
    assert client.as_key("browser-key").post("/v1/events", json={**other, "event_id": "d-4"}).status_code == 200
    assert shown() == ["long"]
    offer("gone", 5, NOW + timedelta(days=2))
    assert client.post("/v1/events", json={**other, "event_id": "d-5", "message_id": "gone"}).status_code == 200
    assert shown() == ["long"]
    # A rejected event dismisses nothing.
    assert visitor.post("/v1/events", json={**event, "event_id": "d-2", "message_id": "long",
                                            "occurred_at": "not a time"}).status_code == 400
    assert shown() == ["long"]
    inbox.close()


def test_a_visitor_without_profiling_consent_is_shown_nothing(served, warehouse) -> None:
    client, serving, _, _ = served
    inbox = Inbox(serving / INBOX_FILE)
    inbox.put([InAppMessage("m-laura", LAURA, "c", 1, "t", "b", None, 1, stamp(NOW - timedelta(hours=1)),
                            stamp(NOW + timedelta(days=1)))])
    inbox.close()
    answer = client.get(f"/v1/messages/customer_id/{LAURA}").json()
    assert answer["messages"] == [] and answer["personalized"] is False and answer["reason"] == "no_profiling_consent"


def test_displayed_and_clicked_events_land_and_reach_measurement(served, warehouse) -> None:
    client, serving, landing, clock = served
    send(warehouse, serving, [banner()], NOW - timedelta(hours=2))
    clock.at = NOW
    visitor = as_visitor(client, warehouse, PAOLA)
    [message] = visitor.get("/v1/messages/me").json()["messages"]
    events = [{"event_id": f"v-{kind}", "event_type": kind, "occurred_at": f"2026-11-20T11:5{i}:00Z",
               "anonymous_id": "dev-paola", "message_id": message["message_id"]}
              for i, kind in enumerate(("message_displayed", "message_clicked"))]
    answer = visitor.post("/v1/events", json=events)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    report = load_landing(landing, warehouse)
    assert not report.failed_files, str(report)
    result = run_dbt(dbt_command("run", HANDCRAFTED_AS_OF, select="stg_events__events message_outcomes"),
                     warehouse=warehouse)
    assert result.ok, str(result)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        landed = con.execute("select event_type, message_id from staging.stg_events__events "
                             "where message_id is not null order by event_type").fetchall()
        outcome = con.execute("select delivered, opened, clicked, dismissed from measurement.message_outcomes "
                              "where message_id = ?", [message["message_id"]]).fetchone()
    assert landed == [("message_clicked", message["message_id"]), ("message_displayed", message["message_id"])]
    assert outcome == (True, True, True, False)


def test_an_in_app_message_counts_against_the_same_frequency_cap_as_email(served, warehouse) -> None:
    _, serving, _, _ = served
    with duckdb.connect(str(warehouse)) as con:  # Mario: profiling consent, and an address not suppressed
        con.execute("insert into triggers.trg_banner select * replace (? as customer_id, ? || ':promo' as trigger_key) "
                    "from triggers.trg_banner where customer_id = ?", [MARIO, MARIO, PAOLA])
    mailbox = Mailbox()
    promo_email = banner(priority=40, channel="email", campaign="favourite_on_promotion",
                         template="favourite_on_promotion", consent=None)
    # The banner (higher priority) goes first; under 1 a day the email of the same pass is capped.
    _, ledger = send(warehouse, serving, [banner(priority=60), promo_email], NOW, ONE_A_DAY, mailbox)
    assert ledger[("favourite_on_site", f"{MARIO}:promo")] == ("sent", None)
    state, reason = ledger[("favourite_on_promotion", f"{MARIO}:promo")]
    assert state == "suppressed" and reason.startswith("frequency cap (1/day"), reason
    # ... and in a later pass too: the banner sent today counts, whatever its channel.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into triggers.trg_banner select * replace (trigger_key || ':2' as trigger_key) "
                    "from triggers.trg_banner where customer_id = ?", [MARIO])
    _, ledger = send(warehouse, serving, [promo_email], NOW + timedelta(hours=1), ONE_A_DAY, mailbox)
    state, reason = ledger[("favourite_on_promotion", f"{MARIO}:promo:2")]
    assert state == "suppressed" and reason.startswith("frequency cap (1/day"), reason
    assert [m for m in mailbox.sent if m.customer_id == MARIO] == []
    # Laura got no banner (no profiling consent): her email goes, the cap is per customer.
    assert [m.customer_id for m in mailbox.sent] == [LAURA]


def test_a_message_of_unknown_outcome_is_written_again_never_twice(served, warehouse) -> None:
    client, serving, _, clock = served
    send(warehouse, serving, [banner()], NOW)
    with duckdb.connect(str(warehouse)) as con:  # as a pass killed between the inbox write and the ledger leaves it
        con.execute("update activation.message_ledger set state = 'unknown', sent_at = null, reason = 'in flight' "
                    "where campaign = 'favourite_on_site' and customer_id = ?", [PAOLA])
    _, ledger = send(warehouse, serving, [banner()], NOW + timedelta(minutes=5))
    assert ledger[("favourite_on_site", f"{PAOLA}:promo")] == ("sent", None)
    with sqlite3.connect(serving / INBOX_FILE) as con:
        assert con.execute("select count(*) from messages where customer_id = ?", [PAOLA]).fetchone() == (1,)
    clock.at = NOW + timedelta(minutes=6)
    assert len(client.get(f"/v1/messages/customer_id/{PAOLA}").json()["messages"]) == 1


WRITER = """
import sys
from activations.messaging.inbox import Inbox, InAppMessage
inbox, batch, n = Inbox(sys.argv[1]), int(sys.argv[2]), 0
while True:
    inbox.put([InAppMessage(f"m-{n}-{i}", f"c-{i % 97}", "c", 1, "t" * 200, "b" * 500, None, 1,
                            "2026-11-20T00:00:00Z", "2026-12-20T00:00:00Z") for i in range(batch)])
    n += 1
    print(n, flush=True)
"""


def test_the_inbox_survives_a_writer_killed_mid_write(tmp_path) -> None:
    path, batch = tmp_path / INBOX_FILE, 2000
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(batch)], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[2], text=True)
    try:
        assert writer.stdout.readline().strip() == "1"  # at least one batch committed
        time.sleep(0.3)  # then killed at a random point of a later one
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait(10)
    with sqlite3.connect(path) as con:
        assert con.execute("pragma integrity_check").fetchone() == ("ok",)
        count = con.execute("select count(*) from messages").fetchone()[0]
        partial = con.execute("select count(*) from messages where length(body) <> 500").fetchone()[0]
    assert count >= batch and count % batch == 0 and partial == 0  # whole batches only: each was one transaction
    reader = Inbox(path, create=False)  # and the server reads it as it is
    assert len(reader.due("c-1", datetime(2026, 11, 21, tzinfo=UTC), limit=10**6)) == len(range(1, batch, 97)) * (
        count // batch)
    reader.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_channel_file_puts_on_site_messages_in_the_inbox_the_server_reads(tmp_path, monkeypatch) -> None:
    from activations.messaging.channels import ChannelConfigError, channel_from_config, load_channel_entries

    monkeypatch.setenv("ATTIVA_SERVING", str(tmp_path / "serving"))
    channel = channel_from_config("on_site", load_channel_entries()["on_site"], {})
    assert isinstance(channel, InAppChannel) and channel.ttl == timedelta(days=3)
    assert channel.inbox.path == tmp_path / "serving" / INBOX_FILE
    assert channel.recipient == "in_app" and channel.resend_is_safe
    channel.close()
    with pytest.raises(ChannelConfigError, match="ttl"):
        channel_from_config("on_site", {"type": "in_app", "ttl": "soon"}, {})
