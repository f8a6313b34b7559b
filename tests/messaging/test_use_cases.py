"""Every use case end to end on the handcrafted people: each trigger's real policy (its YAML meta),
the real templates, channels.yml and messaging.yml, sent over real SMTP (and HTTP, for the CRM task)
to the sandbox. Who received which message, when, with what in it, and once: a second pass sends
nothing.

Each case runs on its own copy of the handcrafted warehouse (built at 2026-11-20 12:00 UTC), one
trigger at a time, with passes at chosen moments (a pass before the time a message is due is part of
"the right time"). Cases named "as built" use the data as it is: often the only candidate is rightly
left out (no consent, the holdout, an exit), and the test says why. Where that leaves nothing to
read, a second case changes the one thing in the way (named in its `setup`) to check the content.
The passes read the warehouse as built on 20 November, consent included, whatever the pass's time.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from activations import syncs
from activations.destinations import load_destinations
from activations.messaging.channels import load_channel_entries, load_channels
from activations.messaging.ledger import ensure_ledger
from activations.messaging.policy import Trigger, load_settings, triggers
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates
from activations.messaging.validate import validate_templates
from sandbox import running_sandbox
from tests.conftest import HANDCRAFTED_AS_OF
from tests.dbt.test_handcrafted import customer_of

pytestmark = pytest.mark.xdist_group("handcrafted")

ROOT = Path(__file__).resolve().parents[2]
AS_OF = HANDCRAFTED_AS_OF  # 13:00 in Rome, where every handcrafted person lives
SETTINGS = load_settings(ROOT / "messaging.yml")  # caps 1/day and 3/week, quiet hours 21:00-08:00


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return AS_OF.replace(month=month, day=day, hour=hour, minute=minute)


@dataclass(frozen=True)
class Pass:
    """One messaging pass at `at`: exactly these people receive one message each, showing these texts."""

    at: datetime
    sends: dict[str, tuple[str, ...]] = field(default_factory=dict)
    before: tuple[str, ...] = ()  # SQL on the copy before this pass (people's names in braces)


@dataclass(frozen=True)
class Case:
    campaign: str
    passes: tuple[Pass, ...]
    # Every ledger row at the end: person -> {(step, state, reason or None)}; nobody else is in the ledger.
    outcome: dict[str, set[tuple[int, str, str | None]]]
    setup: tuple[str, ...] = ()  # SQL on the copy before the first pass
    holdout: float | None = None  # instead of the policy's share


GRANT = "update marts.customers set consent_email = true, email_marketable = true where customer_id = '{%s}'"
SENT = (1, "sent", None)
NO_CONSENT = (1, "suppressed", "no consent at send time")
COUPON = "{coupon}"  # stands for the coupon code the ledger recorded for the message

CASES = {
    # Laura's cart (06:00 Rome, tea) waits the 2 h delay; Giulia's (12:00 Rome) has no consent at
    # send time; Rita ordered after carting: never planned.
    "abandoned_cart": Case("abandoned_cart", (
        Pass(at(11, 20, 6, 30)),  # Laura's cart is 1.5 h old
        Pass(AS_OF, {"laura": ("Laura, hai dimenticato qualcosa nel carrello", "Tè Verde Sencha: 2 × 7,50 €")}),
        Pass(at(11, 20, 14)),  # Giulia's is due at 13:00 UTC
    ), {"laura": {SENT}, "giulia": {NO_CONSENT}}),

    # Anna's birthday is today, but she is in the campaign's 10% holdout (and has no address).
    "birthday (as built)": Case("birthday", (Pass(AS_OF),),
                                {"anna": {(1, "held_out", "holdout (10% of customers)")}}),
    # With an address, consent and no holdout: the greeting waits for her local midnight, then
    # for the end of quiet hours (08:00 in Rome), and carries a 15% coupon.
    "birthday": Case("birthday", (
        Pass(at(11, 19, 22, 30)),  # 23:30 in Rome: not her birthday yet
        Pass(at(11, 20, 5)),  # 06:00 in Rome: quiet hours, postponed to 08:00
        Pass(at(11, 20, 7, 5), {"anna": ("Buon compleanno, Anna! Un regalo per te", COUPON, "15% di sconto")}),
    ), {"anna": {SENT}}, setup=("update marts.customers set email = 'anna.neri@example.it' "
                                "where customer_id = '{anna}'", GRANT % "anna"), holdout=0.0),

    # Chiara subscribed on 15 November: day 0, 2 and 5 of the series, each once, none early.
    "welcome": Case("welcome", (
        Pass(at(11, 15, 10, 30), {"chiara": ("Benvenuto/a in Emporio Nove, Chiara",)}),
        Pass(at(11, 16, 12)),
        Pass(at(11, 17, 10, 30), {"chiara": ("I preferiti dei nostri clienti",)}),
        Pass(at(11, 20, 10, 30), {"chiara": ("Il segreto di una moka perfetta",)}),
    ), {"chiara": {(1, "sent", None), (2, "sent", None), (3, "sent", None)}}),

    # As built, Chiara is already an MQL: the series has exited, nothing is planned.
    "lead_nurture (as built)": Case("lead_nurture", (Pass(AS_OF),), {}),
    # The series as it ran before marketing qualified her (20 October): day 0; the price list as soon as she
    # clicks the first (on day 2, not day 7: the step waits for the click); then the qualification stops the
    # day-14 step.
    "lead_nurture": Case("lead_nurture", (
        Pass(at(10, 1, 12), {"chiara": ("Il caffè giusto per il suo ufficio", "Gentile Chiara Fontana")}),
        Pass(at(10, 2, 9)),  # no click yet: the price list waits
        Pass(at(10, 3, 12), {"chiara": ("Il listino Horeca e uffici",)}, before=(
            "insert into raw.email_engagement (engagement_id, email, event_type, occurred_at, campaign, message_id) "
            "select 'K1', 'chiara@x.it', 'click', timestamp '2026-10-03 11:00:00', campaign, message_id "
            "from activation.message_ledger where campaign = 'lead_nurture' and step = 1",)),
        Pass(at(10, 15, 12), before=("update triggers.trg_lead_nurture set exit_reason = 'became_mql'",)),
    ), {"chiara": {(1, "sent", None), (2, "sent", None), (3, "suppressed", "exited: became_mql")}},
        setup=("update triggers.trg_lead_nurture set exit_reason = null",)),

    # Davide's order O15 (12 November) is followed up 7 days later; he has no email consent.
    "cross_sell (as built)": Case("cross_sell", (Pass(AS_OF),), {"davide": {NO_CONSENT}}),
    "cross_sell": Case("cross_sell", (
        Pass(at(11, 19, 9)),  # the order is not 7 days old yet
        Pass(AS_OF, {"davide": ("Grazie per il tuo ordine", "Ciao Davide", "ordine n. O15")}),
    ), {"davide": {SENT}}, setup=(GRANT % "davide",)),

    # The blend P1 is 20% off: Laura gets it (either subject of the A/B test); Paola has no consent;
    # Mario already bought it.
    "favourite_on_promotion": Case("favourite_on_promotion", (
        Pass(AS_OF, {"laura": ("Miscela Classica 1kg, uno dei prodotti che acquisti più spesso, è scontato del 20%",
                               "Ora costa 10,32 €")}),
    ), {"laura": {SENT}, "paola": {NO_CONSENT}}),

    # Paola's lapse reached 90 days on 13 October, three days after she unsubscribed: never sent; the
    # journey's SMS a week later (she has no SMS consent either) is past its 30-day expiry by 20 November.
    "win_back (as built)": Case("win_back", (Pass(at(10, 13, 12)), Pass(AS_OF)), {"paola": {
        NO_CONSENT, (2, "suppressed", "expired before it could be sent")}}),
    "win_back": Case("win_back", (
        Pass(at(10, 13, 8)),  # 90 days after her last order come at 09:00 UTC
        Pass(at(10, 13, 12), {"paola": ("Paola, ci manchi! Uno sconto per tornare a trovarci", COUPON,
                                        "10% di sconto")}),
    ), {"paola": {SENT, (2, "planned", None)}},  # the journey's SMS, a week later unless she opened or bought
        setup=("delete from raw.email_engagement where lower(email) = 'paola.sala@libero.it'",
                                 GRANT % "paola")),

    # Giulia viewed the grinder three times (the third at 09:00 UTC); she is in the holdout and has
    # no consent. Laura carted the tea she kept viewing: exited, never planned.
    "browse_abandonment (as built)": Case("browse_abandonment", (Pass(AS_OF),),
                                          {"giulia": {(1, "held_out", "holdout (10% of customers)")}}),
    "browse_abandonment": Case("browse_abandonment", (
        Pass(at(11, 20, 10, 30)),  # the 2 h delay after the third view
        Pass(AS_OF, {"giulia": ("Stai ancora pensando a Macinacaffè Manuale?", "Ciao Giulia")}),
    ), {"giulia": {SENT}}, setup=(GRANT % "giulia",), holdout=0.0),
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    state = tmp_path_factory.mktemp("use_cases") / "sandbox"
    with running_sandbox(state, smtp_port=0, env={}) as base:
        base.state_dir = state
        yield base


@pytest.fixture(scope="module")
def env(sandbox) -> dict[str, str]:
    """What points channels.yml and destinations.yml at this sandbox."""
    return {"ATTIVA_SANDBOX_PORT": sandbox.rsplit(":", 1)[1], "ATTIVA_SMTP_PORT": str(sandbox.smtp[1])}


@pytest.fixture(scope="module")
def declared(handcrafted_warehouse) -> dict[str, Trigger]:
    """Every trigger with its policy, as the definitions load them (templates validated)."""
    manifest = json.loads((handcrafted_warehouse.parent / "dbt_target" / "manifest.json").read_text())
    with duckdb.connect(str(handcrafted_warehouse), read_only=True) as con:
        columns = {r[0] for r in con.execute("describe marts.customers").fetchall()}
    found = triggers(manifest, set(load_channel_entries(ROOT / "channels.yml")), columns, SETTINGS)
    validate_templates(found, Templates())
    return {t.campaign: t for t in found}


@pytest.fixture(scope="module")
def people(handcrafted_warehouse) -> dict[str, str]:
    return customer_of(handcrafted_warehouse)


class World:
    """A copy of the handcrafted warehouse, the channels, and what the SMTP server received since."""

    def __init__(self, source: Path, folder: Path, sandbox, env: dict[str, str], people: dict[str, str]):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "warehouse.duckdb"
        shutil.copy(source, self.path)
        self.con = duckdb.connect(str(self.path))
        self.channels = load_channels(ROOT / "channels.yml", env=env)
        self.mailbox = sandbox.state_dir / "smtp" / "messages.jsonl"
        self.seen = self._lines()
        self.people = people
        self.person_of = {v: k for k, v in people.items()}

    def sql(self, statement: str) -> None:
        self.con.execute(statement.format(**self.people))

    def run(self, found: list[Trigger], now: datetime):
        return run_pass(self.con, found, self.channels, Templates(), SETTINGS, now)

    def _lines(self) -> int:
        return len(self.mailbox.read_text(encoding="utf-8").splitlines()) if self.mailbox.exists() else 0

    def new_mail(self) -> list[email.message.EmailMessage]:
        lines = self.mailbox.read_text(encoding="utf-8").splitlines() if self.mailbox.exists() else []
        fresh, self.seen = lines[self.seen:], len(lines)
        return [email.message_from_string(json.loads(line)["raw"].replace("\r\n", "\n"), policy=email.policy.default)
                for line in fresh]

    def ledger(self) -> list[tuple]:
        return self.con.execute("""select campaign, customer_id, step, state, reason, coupon_code, message_id
                                   from activation.message_ledger order by campaign, customer_id, step""").fetchall()

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.con.close()


@pytest.fixture
def world(handcrafted_warehouse, sandbox, env, people, tmp_path):
    worlds: list[World] = []

    def make(name: str = "world") -> World:
        worlds.append(World(handcrafted_warehouse, tmp_path / name, sandbox, env, people))
        return worlds[-1]

    yield make
    for w in worlds:
        w.close()


def _recipient(w: World, message) -> str:
    [(customer_id,)] = w.con.execute("select customer_id from marts.customers where email = ?",
                                     [message["To"].addresses[0].addr_spec]).fetchall()
    return w.person_of[customer_id]


@pytest.mark.parametrize("name", CASES)
def test_each_use_case_reaches_the_right_people_at_the_right_time_with_the_right_content_once(name, world, declared):
    case = CASES[name]
    w = world()
    for statement in case.setup:
        w.sql(statement)
    trigger = declared[case.campaign]
    if case.holdout is not None:
        trigger = dataclasses.replace(trigger, holdout=case.holdout)
    for step in case.passes:
        for statement in step.before:
            w.sql(statement)
        w.run([trigger], step.at)
        mail = w.new_mail()
        got = {}
        for message in mail:
            got.setdefault(_recipient(w, message), []).append(message)
        assert {p: len(m) for p, m in got.items()} == {p: 1 for p in step.sends}, f"pass at {step.at:%d %b %H:%M}"
        for person, texts in step.sends.items():
            [message] = got[person]
            assert message["X-Attiva-Campaign"] == case.campaign
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            [(coupon,)] = w.con.execute("select coupon_code from activation.message_ledger where message_id = ?",
                                        [message["X-Attiva-Message-Id"]]).fetchall()
            for expected in texts:
                expected = expected.replace(COUPON, coupon or "<no coupon recorded>")
                assert expected in message["Subject"] or expected in text, (person, expected, text)
            assert "unsubscribe" in message["List-Unsubscribe"] and "utm_campaign=" + case.campaign in html

    # Once: evaluating again sends nothing more.
    w.run([trigger], case.passes[-1].at + timedelta(minutes=1))
    assert w.new_mail() == []
    outcome: dict[str, set] = {}
    for _, customer_id, step, state, reason, _, _ in w.ledger():
        outcome.setdefault(w.person_of[customer_id], set()).add((step, state, reason))
    assert outcome == case.outcome


def test_one_pass_over_every_trigger_lets_the_higher_priority_win(world, declared):
    """The pipeline's own pass at as_of, all triggers at once: Laura's cart reminder (priority 90)
    takes her one marketing email of the day, so her favourite-on-promotion (55) is capped; Chiara
    gets day 5 of her welcome (the first two steps expired unsent); nobody else."""
    w = world()
    w.run(list(declared.values()), AS_OF)
    assert sorted((_recipient(w, m), m["X-Attiva-Campaign"]) for m in w.new_mail()) == [
        ("chiara", "welcome"), ("laura", "abandoned_cart")]
    states = {(c, w.person_of[p], s): (state, reason) for c, p, s, state, reason, _, _ in w.ledger()}
    assert states[("favourite_on_promotion", "laura", 1)][0] == "suppressed"
    assert states[("favourite_on_promotion", "laura", 1)][1].startswith("frequency cap (1/day, 3/week)")
    assert states[("welcome", "chiara", 1)] == ("suppressed", "expired before it could be sent")
    assert states[("welcome", "chiara", 3)] == ("sent", None)
    assert not any(campaign == "mql_handoff" for campaign, _, _ in states)  # 31 days late: past its expiry
    w.run(list(declared.values()), AS_OF + timedelta(minutes=5))
    assert w.new_mail() == []


def _tasks(sandbox) -> dict[str, dict]:
    state = requests.get(f"{sandbox}/_sandbox/state/salesforce", timeout=10).json()
    return state["objects"].get("Task", {}).get("Attiva_Message_Id__c", {})


def test_the_mql_handoff_creates_one_task_for_sales_on_the_leads_contact(world, declared, sandbox, env,
                                                                        handcrafted_warehouse):
    """Chiara became an MQL on 20 October at 10:00 UTC: a Salesforce Task on her Contact, created once,
    with the rendered text. Not an email: nothing reaches the SMTP server, quiet hours do not hold it
    and it does not count against her marketing caps; her email consent does hold it."""
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "salesforce"}, timeout=10).raise_for_status()
    handoff = declared["mql_handoff"]
    assert (handoff.channel, handoff.consent, handoff.marketing, handoff.quiet_hours, handoff.holdout) == (
        "sales_task", "consent_email", False, None, 0.0)
    w = world()
    chiara = w.people["chiara"]
    # She already had her one marketing email of the day (caps: 1/day).
    ensure_ledger(w.con)
    w.con.execute("""insert into activation.message_ledger (campaign, trigger_key, step, customer_id, channel, state,
                     marketing, message_id, sent_at) values ('newsletter', 'n1', 1, ?, 'email', 'sent', true,
                     'newsletter.1@attiva', ?)""", [chiara, at(10, 20, 9).replace(tzinfo=None)])

    # 22:30 in Rome (quiet hours), before the leads sync has put her Contact in Salesforce: the task waits.
    w.run([handoff], at(10, 20, 20, 30))
    [(state, reason)] = w.con.execute("select state, reason from activation.message_ledger "
                                      "where campaign = 'mql_handoff'").fetchall()
    assert state == "planned" and f"{chiara} is not in Salesforce yet" in reason
    assert _tasks(sandbox) == {}

    # The leads audience's real sync (destinations.yml: salesforce, Contact on Attiva_Customer_Id__c).
    sync = syncs.find("aud_leads_to_nurture__salesforce",
                      syncs.declared(handcrafted_warehouse.parent / "dbt_target" / "manifest.json"))
    w.con.close()
    result = syncs.run(sync, warehouse_path=w.path, destinations=load_destinations(ROOT / "destinations.yml", env=env),
                       now=at(10, 20, 20, 45))
    assert result.status == "success" and result.confirmed >= 1, str(result)
    w.con = duckdb.connect(str(w.path))
    contacts = requests.get(f"{sandbox}/_sandbox/state/salesforce", timeout=10).json()["objects"]["Contact"]
    contact = contacts["Attiva_Customer_Id__c"][chiara]

    # Still within quiet hours, after her capped-out day: the task is created on her Contact.
    w.run([handoff], at(10, 20, 21))
    [task] = _tasks(sandbox).values()
    assert task["WhoId"] == contact["Id"] and task["Status"] == "Not Started" and task["Priority"] == "High"
    assert task["Subject"] == "Nuovo MQL da chiamare: Chiara Fontana (Studio Fontana)"
    assert "Chiara Fontana, Titolare presso Studio Fontana" in task["Description"]
    assert "Lead score: 66/100" in task["Description"] and "chiara@studiofontana.it" in task["Description"]
    assert "dal 20/10/2026" in task["Description"] and "iscrizione" not in task["Description"]
    [(state, provider_id)] = w.con.execute("select state, provider_id from activation.message_ledger "
                                           "where campaign = 'mql_handoff'").fetchall()
    assert (state, provider_id) == ("sent", task["Id"])
    assert w.new_mail() == []

    # Once.
    w.run([handoff], at(10, 20, 21, 5))
    assert len(_tasks(sandbox)) == 1

    # Had she withdrawn her email consent, sales would not be asked to chase her.
    withdrawn = world("withdrawn")
    withdrawn.sql("update marts.customers set consent_email = false where customer_id = '{chiara}'")
    withdrawn.run([handoff], at(10, 20, 12))
    assert withdrawn.ledger()[0][3:5] == ("suppressed", "no consent at send time")
    assert len(_tasks(sandbox)) == 1
