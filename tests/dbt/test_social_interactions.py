"""Social interactions (comments, reactions, shares, follows, direct messages) in the warehouse: the handcrafted
landing's export (tests/fixtures/handcrafted/social/interactions, the rows below but the last two), then the
last two landed on top of the handcrafted warehouse, built incrementally, then rebuilt in full. A handle that shared a
known email in a direct message joins that customer, and all its interactions count as theirs; a handle that
never shared anything is anonymous brand engagement; a handle that typed a new address beside a customer's is
shared and merges no one; a webhook delivered twice counts once; a reaction taken back does not count; forget
erases the handle from the raw rows."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FIXTURES
from tests.dbt.on_top import forgotten, owner, query

pytestmark = pytest.mark.xdist_group("handcrafted")

COLUMNS = ("interaction_id", "platform", "kind", "verb", "occurred_at", "page_id", "post_id", "from_id",
           "from_name", "message", "reaction_type", "email", "phone")
PAGE = "104857600000001"


def row(interaction_id, platform, kind, at, from_id, verb="add", post=None, message=None, reaction=None,
        email=None, phone=None) -> dict:
    return dict(zip(COLUMNS, (interaction_id, platform, kind, verb, at, PAGE, post, from_id, "Someone", message,
                              reaction, email, phone), strict=True))


# Landed with the handcrafted data, but the last two (LATE).
ROWS = [
    # Mario (CRM C1) reacts and comments, then shares his email in Messenger: all three are his.
    row("P1_F100", "facebook", "reaction", "2026-11-16T09:00:00Z", "F100", post="P1", reaction="LOVE"),
    row("c1", "Facebook", "comment", "2026-11-16T09:05:00Z", "F100", post="P1", message="Bello!"),
    row("m1", "facebook", "message", "2026-11-16T09:10:00Z", "F100", message="Offerte?",
        email=" Mario.Rossi@Gmail.com"),
    row("m1", "facebook", "message", "2026-11-16T09:10:00Z", "F100", message="Offerte?",
        email=" Mario.Rossi@Gmail.com"),  # the webhook delivered it twice
    # An Instagram follower who never says who they are: anonymous; one reaction taken back.
    row("follow_I200", "instagram", "follow", "2026-11-17T10:00:00Z", "I200"),
    row("P2_I200", "instagram", "reaction", "2026-11-17T10:01:00Z", "I200", post="P2", reaction="like"),
    row("P2_I200", "instagram", "reaction", "2026-11-17T11:00:00Z", "I200", verb="remove", post="P2",
        reaction="like"),
    # LinkedIn hides who reacted.
    row("P3_hidden1", "linkedin", "reaction", "2026-11-18T12:00:00Z", "", post="P3", reaction="praise"),
    # A handle that types a new address and then Giulia's (CRM C2) work address: shared, merges no one.
    row("m2", "instagram", "message", "2026-11-18T08:00:00Z", "I300", email="new.person@example.org"),
    row("m3", "instagram", "message", "2026-11-18T08:05:00Z", "I300", email="giulia@work.it"),
]
HANDCRAFTED, LATE = [r for r in ROWS if r["from_id"] != "I300"], [r for r in ROWS if r["from_id"] == "I300"]


def land(landing: Path) -> None:
    """The two late rows, as another file: a new export (tests/dbt/conftest.py lands it with the others)."""
    folder = landing / "social" / "interactions"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "interactions_late.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(LATE)


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_a_handle_that_shared_a_known_email_is_that_customer_and_its_engagement_is_theirs(
        on_top, handcrafted_warehouse, which) -> None:
    warehouse = on_top[which]
    [mario] = owner(handcrafted_warehouse, "crm_contact_id", "C1")
    assert owner(warehouse, "social_user_id", "facebook:F100") == {mario}
    assert query(warehouse, "select kind, reaction_type, customer_id from marts.social_engagement "
                            "where social_user_id = 'facebook:F100' order by occurred_at") == [
        ("reaction", "love", mario), ("comment", None, mario), ("message", None, mario)]


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_a_handle_that_shared_nothing_is_anonymous_and_a_reaction_taken_back_does_not_count(on_top, which) -> None:
    warehouse = on_top[which]
    assert owner(warehouse, "social_user_id", "instagram:I200") == set()
    assert query(warehouse, "select kind, customer_id from marts.social_engagement "
                            "where social_user_id = 'instagram:I200'") == [("follow", None)]
    assert query(warehouse, "select kind, social_user_id, customer_id from marts.social_engagement "
                            "where platform = 'linkedin'") == [("reaction", None, None)]


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_a_handle_that_typed_a_new_address_beside_a_customer_s_merges_no_one(on_top, handcrafted_warehouse,
                                                                            which) -> None:
    warehouse = on_top[which]
    [giulia] = owner(handcrafted_warehouse, "crm_contact_id", "C2")
    assert owner(warehouse, "email", "giulia@work.it") == {giulia}
    assert giulia not in owner(warehouse, "email", "new.person@example.org")
    assert query(warehouse, "select is_shared from intermediate.int_identity__nodes "
                            "where node = 'social_user_id:instagram:I300'") == [(True,)]
    assert query(warehouse, "select count(customer_id) from marts.social_engagement "
                            "where social_user_id = 'instagram:I300'") == [(0,)]


@pytest.mark.parametrize("which", [0, 1], ids=["incremental", "full"])
def test_weekly_engagement_counts_each_interaction_once(on_top, which) -> None:
    warehouse = on_top[which]
    weekly = query(warehouse, "select platform, kind, interactions, people, customers, interactions_by_customers "
                              "from marts.social_engagement_weekly where week_start = date '2026-11-16' "
                              "order by platform, kind")
    assert weekly == [("facebook", "comment", 1, 1, 1, 1), ("facebook", "message", 1, 1, 1, 1),
                      ("facebook", "reaction", 1, 1, 1, 1), ("instagram", "follow", 1, 1, 0, 0),
                      ("instagram", "message", 2, 1, 0, 0), ("linkedin", "reaction", 1, 1, 0, 0)]


def test_forget_erases_the_handle_its_name_and_messages_from_the_raw_rows(on_top, tmp_path) -> None:
    warehouse = forgotten(on_top[0], tmp_path, "mario.rossi@gmail.com")
    rows = query(warehouse, "select interaction_id, kind, from_id, from_name, message, email from "
                            "raw.social_interactions where interaction_id in ('P1_F100', 'c1', 'm1') "
                            "order by interaction_id")
    [(others,)] = query(warehouse, "select count(*) from raw.social_interactions where from_id = 'I200'")
    [(engagement,)] = query(warehouse, "select count(*) from marts.social_engagement "
                                       "where social_user_id = 'facebook:F100'")
    # The interactions stay, as anonymous engagement; who made them and what they wrote go.
    assert rows == [("P1_F100", "reaction", None, None, None, "erased"), ("c1", "comment", None, None, None, "erased"),
                    ("m1", "message", None, None, None, "erased"), ("m1", "message", None, None, None, "erased")]
    assert others == 3 and engagement == 0


def test_the_report_shows_social_engagement_per_week_and_the_share_from_customers(on_top, tmp_path) -> None:
    import re

    from activations.report import write_report

    with duckdb.connect(str(on_top[0]), read_only=True) as con:
        page = Path(write_report(con, tmp_path / "report.html")).read_text(encoding="utf-8")
    section = re.search(r'<section id="social">(.*?)</section>', page, re.S).group(1)
    assert "<title>Social interactions per week, by kind</title>" in section and "<circle" in section  # one week
    # the week of 16 Nov: 7 interactions (Mario's reaction, comment and message, the follow, two typed messages,
    # LinkedIn's hidden reaction), 3 of them Mario's, a known customer
    assert re.search(r'<td class="text">16 Nov 2026</td><td>7</td>.*?<td>42.9%</td>', section, re.S), section[-800:]


def test_the_handcrafted_landing_holds_the_rows_above():
    with (FIXTURES / "handcrafted" / "social" / "interactions" / "interactions.csv").open(newline="") as f:
        assert [{k: v or None for k, v in r.items()} for r in csv.DictReader(f)] == \
            [{k: v or None for k, v in r.items()} for r in HANDCRAFTED]


def test_attiva_identity_shows_the_handle_that_joined_the_customer_and_the_one_set_aside(on_top, capsys) -> None:
    from activations.cli import main

    assert main(["identity", "mario.rossi@gmail.com", "--warehouse", str(on_top[0])]) == 0
    out = capsys.readouterr().out
    assert "social_user_id" in out and "facebook:F100" in out, out
    assert main(["identity", "giulia@work.it", "--warehouse", str(on_top[0])]) == 0
    out = capsys.readouterr().out
    assert "instagram:I300" in out and "shared" in out, out
