"""`attiva forget`: a person erased from the warehouse, suppressed for good, and deleted at every destination
with the platform's own deletion API (not only taken out of a list), through a tracked request that stays
pending until the destination confirmed; a late landing file never brings them back."""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import pytest

from activations.build import dbt_command, run_dbt
from activations.engine.run import run_sync
from activations.erasure import drive_erasures, erasure_status, format_status
from activations.forget import forget
from activations.manifest import Audience, Sync
from tests.conftest import HANDCRAFTED_AS_OF

from .setups import FAST_POLICY, FIELDS, make_client, make_config, sandbox_state

pytestmark = pytest.mark.xdist_group("engine")

MARIO = "mario.rossi@gmail.com"  # the handcrafted CRM contact C1, shop customer and web visitor
TYPES = ("hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook", "file_export")
CONTACT_STORES = ("hubspot", "mailchimp", "sendgrid", "brevo")  # one contact per address: keyed on email
AUDIENCE = Audience("customers", "marts.customers", "", ("customer_id", "email", "first_name"),
                    unique_columns=("customer_id",))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def customer_syncs() -> list[Sync]:
    """marts.customers to one instance of every type; the CRMs and the webhook upsert only (they never remove)."""
    syncs = []
    for dest_type in TYPES:
        identifiers = {"external_id": "customer_id"} if dest_type == "salesforce" else {"email": "email"}
        fields = {"FirstName": "first_name", "Email": "email"} if dest_type == "salesforce" else {
            name: column for name, column in FIELDS[dest_type].items() if column == "first_name"}
        mode = "upsert" if dest_type in ("salesforce", "webhook", "hubspot") else "mirror"
        key = "email" if dest_type in CONTACT_STORES else "customer_id"
        syncs.append(Sync(f"customers__{dest_type}", AUDIENCE, f"t_{dest_type}", mode, key, identifiers, fields, None))
    return syncs


def holds(sandbox, dest_type: str, *needles: str) -> list[str]:
    """Which of `needles` the destination still holds anywhere in its state (or its export files)."""
    if dest_type == "file_export":
        text = "".join(p.read_text() for p in sandbox.export_folder.glob("*.csv") if "__erase__" not in p.name)
    else:
        state = sandbox_state(sandbox.base, dest_type)
        state.pop("requests", None)
        state.pop("gdpr_blocklist", None)  # HubSpot's blocklist of hashed addresses is what a GDPR delete leaves
        text = json.dumps(state)
    return [needle for needle in needles if needle in text]


@pytest.fixture
def mario_everywhere(handcrafted_warehouse, sandbox, tmp_path):
    """A warehouse whose customers were synced to every destination type, and the instances' configuration."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    configs = {f"t_{t}": make_config(sandbox.base, t, folder=sandbox.export_folder) for t in TYPES}
    syncs = customer_syncs()
    for sync in syncs:
        client = sandbox.client(sync.destination.removeprefix("t_"))
        assert run_sync(con, sync, client, policy=FAST_POLICY).status in ("success", "delivered_except_invalid"), sync.name
    [(mario,)] = con.execute("select customer_id from marts.customers where email = ?", [MARIO]).fetchall()
    yield con, configs, syncs, mario
    con.close()


def test_forget_deletes_the_person_at_every_destination_and_keeps_them_out(mario_everywhere, sandbox):
    con, configs, syncs, mario = mario_everywhere
    needles = {t: (MARIO, sha256(MARIO)) if t in ("meta", "google") else (MARIO, mario) for t in TYPES}
    for dest_type in TYPES:
        assert holds(sandbox, dest_type, *needles[dest_type]), f"{dest_type} should hold Mario before the forget"

    report = forget(con, "  Mario.Rossi@Gmail.com ", destinations=configs)
    assert report.customers == [mario] and set(report.erasing_at) == set(configs)
    assert drive_erasures(con, configs) == []
    for dest_type in TYPES:
        assert holds(sandbox, dest_type, *needles[dest_type]) == [], f"{dest_type} still holds Mario"
    # The contact stores deleted the contact itself, not only its list membership.
    assert MARIO not in sandbox_state(sandbox.base, "hubspot")["contacts"]
    assert all(c["email_address"] != MARIO for lst in sandbox_state(sandbox.base, "mailchimp")["lists"]
               .values() for c in lst["members"].values())
    # The file export wrote no removal file carrying him: only a notice of hashed keys.
    notices = list(sandbox.export_folder.glob("t_file_export__erase__*.csv"))
    assert len(notices) == 1 and notices[0].read_text().split() == ["key_sha256", sha256(mario)]
    assert not list(sandbox.export_folder.glob("*__remove__*"))

    # The tracked request: every destination confirmed, and the record holds no personal data.
    statuses = erasure_status(con)
    assert {s.destination for s in statuses} == set(configs)
    assert all(s.status == "confirmed" and s.attempts == 1 and s.confirmed_at for s in statuses)
    assert con.execute("select count(*) from activation.erasure_work").fetchone()[0] == 0
    for table in ("erasure_requests", "erasure_destinations", "erased_hashes", "sync_snapshots", "sync_rejects",
                  "sync_plan_rows", "sync_runs"):
        text = json.dumps(con.execute(f"select * from activation.{table}").fetchall(), default=str).lower()
        assert MARIO not in text and mario.lower() not in text, table

    # A late landing file brings him back into the marts (same customer id, and a new one with his address):
    # no sync sends him again, whatever its mode, and the Mailchimp address stays refused.
    con.execute("""insert into marts.customers by name
                   select ? as customer_id, ? as email, 'Mario' as first_name
                   union all select 'cus_late_mario', ?, 'Mario'""", [mario, MARIO, MARIO.upper()])
    for sync in syncs:
        result = run_sync(con, sync, sandbox.client(sync.destination.removeprefix("t_")), policy=FAST_POLICY)
        planned = {k for (k,) in con.execute("select row_key from activation.sync_plan_rows where plan_id = ?",
                                             [result.plan.plan_id]).fetchall()}
        assert result.ok and not planned & {mario, "cus_late_mario", MARIO, MARIO.upper()}, sync.name
    for dest_type in TYPES:
        assert holds(sandbox, dest_type, *needles[dest_type], "cus_late_mario") == [], f"{dest_type} got Mario back"


def test_an_erasure_stays_pending_until_the_destination_confirms(mario_everywhere, sandbox, capsys):
    con, configs, _, mario = mario_everywhere
    sandbox.faults("hubspot", error_rate=1.0)
    forget(con, MARIO, destinations=configs)
    pending = drive_erasures(con, configs)
    assert [(s.destination, s.status, s.attempts) for s in pending] == [("t_hubspot", "pending", 1)]
    assert pending[0].last_error.startswith("hubspot 502") and MARIO not in pending[0].last_error
    assert MARIO in sandbox_state(sandbox.base, "hubspot")["contacts"]
    shown = format_status(erasure_status(con))
    assert "t_hubspot" in shown and "pending" in shown and "t_mailchimp" not in shown
    # Work for the other destinations is gone; HubSpot's waits, and is retried until it confirms.
    assert {d for (d,) in con.execute("select distinct destination from activation.erasure_work").fetchall()} == {
        "t_hubspot"}
    assert drive_erasures(con, configs, only="t_hubspot")[0].attempts == 2
    sandbox.faults("hubspot", error_rate=0.0)
    assert drive_erasures(con, configs, only="t_hubspot") == []
    assert MARIO not in sandbox_state(sandbox.base, "hubspot")["contacts"]
    assert format_status(erasure_status(con)).startswith("no erasure pending")
    assert con.execute("select count(*) from activation.erasure_work").fetchone()[0] == 0


def test_forgetting_nobody_still_suppresses_the_address(handcrafted_warehouse, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        report = forget(con, "stranger@example.com", destinations={})
        assert report.customers == [] and report.emails == 1
        assert con.execute("select count(*) from activation.suppression_list").fetchone()[0] == 1
        assert con.execute("select value_sha256 from activation.erased_hashes").fetchall() == [
            (sha256("stranger@example.com"),)]


def test_forget_deletes_the_persons_predicted_scores(handcrafted_warehouse, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        [(mario,)] = con.execute("select customer_id from marts.customers where email = ?", [MARIO]).fetchall()
        con.execute("create schema if not exists predictions")
        con.execute("create or replace table predictions.customer_clv as select customer_id, 0.5 as probability_alive "
                    "from marts.customers")
        others = con.execute("select count(*) - 1 from predictions.customer_clv").fetchone()[0]
        report = forget(con, MARIO, destinations={})
        assert report.derived_rows_deleted["predictions.customer_clv"] == 1
        assert con.execute("select count(*) from predictions.customer_clv where customer_id = ?", [mario]).fetchone() == (0,)
        assert con.execute("select count(*) from predictions.customer_clv").fetchone() == (others,)


def test_a_late_file_cannot_resend_a_forgotten_address_even_to_a_client_built_before(mario_everywhere, sandbox):
    con, configs, syncs, mario = mario_everywhere
    client = make_client(sandbox.base, "webhook")
    forget(con, MARIO, destinations={})  # no destination configured: the warehouse side alone
    con.execute("insert into marts.customers by name select ? as customer_id, ? as email", [mario, MARIO])
    webhook = next(s for s in syncs if s.destination == "t_webhook")
    result = run_sync(con, webhook, client, policy=FAST_POLICY)
    assert mario not in {k for (k,) in con.execute("select row_key from activation.sync_plan_rows where plan_id = ?",
                                                    [result.plan.plan_id]).fetchall()}
    client.close()


def test_the_forget_command_reports_pending_erasures_and_retries_them(handcrafted_warehouse, sandbox, tmp_path,
                                                                     monkeypatch, capsys):
    from activations.cli import main
    from activations.destinations.config import env_prefix

    from .setups import OPTIONS, TOKENS

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    options = "\n".join(f"    {k}: \"{v}\"" for k, v in OPTIONS["mailchimp"].items())
    (tmp_path / "destinations.yml").write_text(f"destinations:\n  t_mailchimp:\n    type: mailchimp\n{options}\n")
    monkeypatch.setenv("ATTIVA_DESTINATIONS", str(tmp_path / "destinations.yml"))
    monkeypatch.setenv(f"{env_prefix('t_mailchimp')}_URL", f"{sandbox.base}/mailchimp")
    monkeypatch.setenv(f"{env_prefix('t_mailchimp')}_TOKEN", TOKENS["mailchimp"])
    with duckdb.connect(str(warehouse)) as con:
        sync = next(s for s in customer_syncs() if s.destination == "t_mailchimp")
        assert run_sync(con, sync, sandbox.client("mailchimp"), policy=FAST_POLICY).ok
    sandbox.faults("mailchimp", error_rate=1.0)

    # A destinations file that cannot be read: nothing is done, and the command says why.
    monkeypatch.setenv("ATTIVA_DESTINATIONS", str(tmp_path / "missing.yml"))
    assert main(["forget", MARIO, "--warehouse", str(warehouse)]) == 2
    assert "missing.yml" in capsys.readouterr().err
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("select count(*) from marts.customers where email = ?", [MARIO]).fetchone()[0] == 1
    monkeypatch.setenv("ATTIVA_DESTINATIONS", str(tmp_path / "destinations.yml"))
    assert main(["forget", MARIO, "--warehouse", str(warehouse)]) == 3
    out = capsys.readouterr().out
    assert "t_mailchimp" in out and "pending" in out and "mailchimp 500" in out
    assert main(["forget", "--status", "--warehouse", str(warehouse)]) == 3
    assert MARIO not in capsys.readouterr().out
    sandbox.faults("mailchimp", error_rate=0.0)
    assert main(["forget", "--retry", "--warehouse", str(warehouse)]) == 0
    assert main(["forget", "--status", "--all", "--warehouse", str(warehouse)]) == 0
    assert "confirmed" in capsys.readouterr().out
    lists = sandbox_state(sandbox.base, "mailchimp")["lists"]
    assert MARIO not in json.dumps(lists) and lists["a1b2c3"]["members"]


def test_forget_keeps_every_sms_away_from_the_persons_numbers(handcrafted_warehouse, tmp_path):
    from activations.messaging.feedback import phone_sha256

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        phones = [p for (p,) in con.execute("""select distinct identifier_value from marts.customer_identifiers
            where identifier_type = 'phone' and customer_id = (select customer_id from marts.customers where email = ?)""",
                                            [MARIO]).fetchall()]
        assert phones, "the handcrafted Mario has a phone"
        report = forget(con, MARIO, destinations={})
        assert report.phones == len(phones) and "phone number(s) added to the SMS suppression list" in str(report)
        listed = {h for (h,) in con.execute("select phone_sha256 from activation.sms_suppression_list "
                                            "where reason = 'forgotten'").fetchall()}
        assert listed == {phone_sha256(p) for p in phones}
        assert not any(p in json.dumps(con.execute("select * from activation.sms_suppression_list").fetchall(),
                                       default=str) for p in phones)


def test_forget_retires_the_persons_app_push_tokens_in_every_copy(handcrafted_warehouse, tmp_path):
    from activations.messaging import push

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    phone, tablet = "mario-phone:APA91b" + "m" * 40, "mario-tablet:APA91b" + "t" * 40
    with duckdb.connect(str(warehouse)) as con:
        [(mario,)] = con.execute("select customer_id from marts.customers where email = ?", [MARIO]).fetchall()
        [shop_id, *_] = [v for (v,) in con.execute("""select identifier_value from marts.customer_identifiers
            where identifier_type = 'shop_customer_id' and customer_id = ? order by 1""", [mario]).fetchall()]
        columns = [c for (c,) in con.execute("select column_name from information_schema.columns where table_schema = "
                                             "'raw' and table_name = 'app_installations' order by ordinal_position"
                                             ).fetchall()]
        assert "push_token" in columns, "ingestion creates every source's raw table"
        con.execute("insert into raw.app_installations (installation_id, shop_customer_id, push_token, platform, "
                    "registered_at) values ('i-1', ?, ?, 'ios', now()), ('i-2', ?, ?, 'android', now())",
                    [shop_id, phone, shop_id, tablet])
        con.execute("insert into marts.customer_push_tokens (customer_id, push_token, platform, installation_id) "
                    "values (?, ?, 'ios', 'i-1'), (?, ?, 'android', 'i-2')", [mario, phone, mario, tablet])
        report = forget(con, MARIO, destinations={})
        assert report.push_tokens == 2 and "2 app push token(s) retired" in str(report)
        assert set(con.execute("select token_sha256, reason from activation.push_tokens_retired").fetchall()) == {
            (push.token_sha256(phone), "forgotten"), (push.token_sha256(tablet), "forgotten")}
        assert con.execute("select count(*) from raw.app_installations where push_token is not null").fetchone() == (0,)
        assert con.execute("select count(*) from marts.customer_push_tokens").fetchone() == (0,)
        # A late file naming the tablet again, tied to anyone, cannot bring a push to it back.
        con.execute("insert into marts.customer_push_tokens (customer_id, push_token) values ('someone', ?)", [tablet])
        assert push.active_tokens(con, ["someone"]) == {}
    # The next build goes on: the source's tests hold on the emptied rows (a not-null test on the token once
    # failed every run after a forget), and staging drops them.
    tested = run_dbt(dbt_command("build", HANDCRAFTED_AS_OF, select="source:raw.app_installations stg_app__installations"),
                     warehouse)
    assert tested.ok, tested.failures
