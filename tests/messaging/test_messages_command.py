"""`attiva messages` and `attiva messages why`: what became of every message and why, read from the
ledger after real passes over real SMTP (and a pass killed with a message in flight)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import polars as pl
import pytest

from activations.cli import main
from activations.messaging import actions, journal, ledger
from activations.messaging.policy import Caps, Settings
from activations.messaging.send import run_pass
from activations.messaging.status import campaigns
from activations.messaging.templates import Templates

from .test_send import NOW, add_customer, add_occurrence, create_tables, mailbox, make_trigger, smtp  # noqa: F401

pytestmark = pytest.mark.xdist_group("messaging_send")


@pytest.fixture
def passes(tmp_path, mailbox):  # noqa: F811 - the fixture imported above
    """A warehouse after two passes: sent, no consent, capped, held out, and one left in flight."""
    channel, _ = mailbox
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con)
    con.execute("create table triggers.trg_other as select * from triggers.trg_test")
    add_customer(con, "anna", email_address="Anna@Example.it")
    add_customer(con, "bruno", consent=False)
    add_occurrence(con, "k-anna", "anna")
    add_occurrence(con, "k-bruno", "bruno")
    add_occurrence(con, "o-anna", "anna", table="trg_other")
    # Someone the 50 % holdout keeps out, and someone it does not.
    people = [f"p{i}" for i in range(12)]
    held = ledger.in_holdout("winback", pl.Series(people), 0.5).to_list()
    held_person, kept_person = people[held.index(True)], people[held.index(False)]
    con.execute("create table triggers.trg_winback as select * from triggers.trg_test where false")
    for person in (held_person, kept_person):
        add_customer(con, person)
        add_occurrence(con, f"w-{person}", person, table="trg_winback")
    favourite = make_trigger(priority=90)
    other = make_trigger("browse", priority=10, relation="triggers.trg_other")
    winback = make_trigger("winback", holdout=0.5, relation="triggers.trg_winback")
    caps = Settings(caps=Caps(per_day=1, per_week=3), quiet_hours=None)
    run_pass(con, [favourite, other, winback], {"email": channel}, Templates(), caps, NOW)

    # A second occurrence for anna, claimed by a pass that was killed while it was in flight.
    add_occurrence(con, "k-anna-2", "anna")
    ledger.plan_new(con, favourite, NOW)
    key = ("favourite_on_promotion", "k-anna-2", 1)
    sends = journal.SendJournal(journal.path_for(con))
    sends.queue([key])
    sends.sending(key, NOW.replace(tzinfo=None))
    sends.close()
    con.execute("update activation.message_ledger set state = 'queued' where trigger_key = 'k-anna-2'")
    run_pass(con, [favourite, other, winback], {"email": channel}, Templates(), caps, NOW + timedelta(days=2))
    con.close()
    return path, held_person, kept_person


def test_messages_shows_each_campaigns_outcomes_and_reasons(passes, capsys):
    path, _, _ = passes
    assert main(["messages", "--warehouse", str(path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line and not line[0].isspace()}
    heads = lines["campaign"]
    assert heads[:6] == ["sent", "suppressed", "held", "out", "skipped", "failed"]
    # sent, suppressed, held out, skipped (a journey's branch not taken), failed, unknown, waiting, being sent
    assert lines["favourite_on_promotion"] == ["1", "1", "0", "0", "0", "1", "0", "0"]
    assert lines["browse"] == ["0", "1", "0", "0", "0", "0", "0", "0"]
    assert lines["winback"] == ["1", "0", "1", "0", "0", "0", "0", "0"]
    assert "favourite_on_promotion suppressed: 1 no consent at send time" in out
    assert "browse suppressed: 1 frequency cap" in out
    assert "1 message(s) with an unknown outcome" in out


def test_why_lists_every_row_of_a_person_with_its_reason(passes, capsys):
    path, held_person, _ = passes
    assert main(["messages", "why", "anna@example.it", "--warehouse", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 ledger row(s) for anna@example.it (anna)" in out
    [capped] = [line for line in out.splitlines() if line.strip().startswith("browse")]
    assert "suppressed: frequency cap (1/day, 3/week)" in capped
    [sent] = [line for line in out.splitlines() if "k-anna," in line]
    assert "sent 2026-11-20 12:00 UTC, accepted by email" in sent
    [unknown] = [line for line in out.splitlines() if "k-anna-2" in line]
    assert "outcome unknown: in flight when the pass ended" in unknown and "not sent again" in unknown

    assert main(["messages", "why", "bruno", "favourite_on_promotion", "--warehouse", str(path)]) == 0
    assert "suppressed: no consent at send time" in capsys.readouterr().out
    assert main(["messages", "why", held_person, "--warehouse", str(path)]) == 0
    assert "held out: holdout (50% of customers)" in capsys.readouterr().out
    assert main(["messages", "why", "nobody", "--warehouse", str(path)]) == 1
    assert "no triggered message for nobody" in capsys.readouterr().out


def test_the_dagster_metadata_carries_the_same_counts(passes):
    """What orchestration/defs/messages.py adds to each campaign asset's materialization."""
    path, _, _ = passes
    with duckdb.connect(str(path), read_only=True) as con:
        statuses = {s.campaign: s.metadata() for s in campaigns(con)}
    meta = statuses["favourite_on_promotion"]
    assert (meta["messages_sent"], meta["messages_suppressed"], meta["messages_unknown"]) == (1, 1, 1)
    assert meta["suppressed_no_consent_at_send_time"] == 1 and meta["messages_held_out"] == 0
    assert statuses["browse"]["suppressed_frequency_cap"] == 1 and statuses["winback"]["messages_held_out"] == 1


def test_attiva_campaigns_pauses_and_resumes_a_declared_campaign_with_who(tmp_path, capsys):
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    assert main(["campaigns", "--warehouse", str(path)]) == 0
    assert "no campaign is paused" in capsys.readouterr().out
    assert main(["campaigns", "pause", "birthday", "--warehouse", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "birthday paused"
    assert main(["campaigns", "--warehouse", str(path)]) == 0
    assert capsys.readouterr().out.startswith("birthday: paused by ")
    assert main(["campaigns", "pause", "nobody", "--warehouse", str(path)]) == 2
    assert "no campaign 'nobody' is declared" in capsys.readouterr().err
    assert main(["campaigns", "resume", "birthday", "--warehouse", str(path)]) == 0
    with duckdb.connect(str(path), read_only=True) as con:
        assert [a["action"] for a in actions.history(con, "birthday")] == ["resume", "pause"]
