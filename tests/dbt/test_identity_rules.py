"""The shared-identifier rule on small exports shaped like real ones: the handcrafted people
plus a role mailbox of nameless CRM contacts, a family computer, one person's laptop with
their personal and work email, duplicate nameless contacts and a family phone typed at
checkout. Ingested and built through the real pipeline with the shipped defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from activations.build import build_warehouse
from activations.ingest import load_landing
from tests.conftest import FIXTURES, HANDCRAFTED_AS_OF, build_from_landing
from tests.dbt.test_handcrafted import customer_of, owners, query
from tests.dbt.test_incremental import tables

pytestmark = pytest.mark.xdist_group("identity_rules")

CONTACTS = "contact_id,email,phone,first_name,last_name,created_at,updated_at\n"
ACCOUNTS = "shop_customer_id,email,phone,first_name,last_name,created_at,updated_at\n"
ORDERS = "order_id,shop_customer_id,email,phone,ordered_at,status,total_amount,channel\n"


def event(event_id: str, kind: str, device: str, **fields: str) -> str:
    extra = "".join(f',"{k}":"{v}"' for k, v in fields.items())
    return (f'{{"event_id":"{event_id}","event_type":"{kind}","occurred_at":"2026-11-1{event_id[-1]}T10:00:00Z",'
            f'"anonymous_id":"{device}","platform":"web"{extra}}}')


RULE_FILES = {
    # (a) a shop's role mailbox typed into three nameless CRM contacts, each with its own phone;
    # (d) two nameless duplicates of one contact that share only an email; Marta's work
    # address in the CRM with her name and nothing else
    "crm/contacts/contacts_rules.csv": CONTACTS
    + "R1, Info@Bottega.it,+39 351 0000011,,,2025-03-01 10:00:00,2025-03-01 10:00:00\n"
    + "R2,info@bottega.it,+39 351 0000012,,,2025-03-02 10:00:00,2025-03-02 10:00:00\n"
    + "R3,info@bottega.it ,+39 351 0000013,,,2025-03-03 10:00:00,2025-03-03 10:00:00\n"
    + "R4,figlia.conti@example.it,+39 351 0000014,Irene,Conti,2025-03-04 10:00:00,2025-03-04 10:00:00\n"
    + "R6,doppio@example.it,,,,2025-03-06 10:00:00,2025-03-06 10:00:00\n"
    + "R7,Doppio@example.it,,,,2025-03-07 10:00:00,2025-03-07 10:00:00\n"
    + "R8,ufficio@example.it,,,,2025-03-08 10:00:00,2025-03-08 10:00:00\n"
    + "R9,ufficio@example.it,,,,2025-03-09 10:00:00,2025-03-09 10:00:00\n"
    # (f) Diego Caputo, once on a form that asks for the surname first
    + "R10,diegocaputo@example.it,,Caputo,Diego,2025-03-10 10:00:00,2025-03-10 10:00:00\n"
    + "R11,diegocaputo@example.it,,Diego,Caputo,2025-03-11 10:00:00,2025-03-11 10:00:00\n"
    # (g) Anna's contact, and its new version after she married
    + "R12,anna.rossi@example.it,,Anna,Rossi,2025-03-12 10:00:00,2025-03-12 10:00:00\n"
    + "R12,anna.rossi@example.it,,Anna,Bianchi,2025-03-12 10:00:00,2026-06-01 10:00:00\n"
    # (h) Nuria's two contacts (one typed in capitals)
    + "R13,nuria.m@example.es,+34 600 000 013,Nuria,Martín,2025-03-13 10:00:00,2025-03-13 10:00:00\n"
    + "R14,nuria.m@example.es,+34 600 000 013,NURIA,Martín,2025-03-14 10:00:00,2025-03-14 10:00:00\n"
    # (j) two colleagues on their hotel's mailbox, each with their own phone
    + "R40,amministrazione@hotelbelvedere.it,+39 391 4034895,Salvatore,Giordano,2025-03-15 10:00:00,"
    "2025-03-15 10:00:00\n"
    + "R41,amministrazione@hotelbelvedere.it,+39 391 4034896,Anna,Ferri,2025-03-16 10:00:00,2025-03-16 10:00:00\n",
    # (b) the Contis' family computer's account holders; (c) Marta's shop account;
    # (d) the Riccis, two account holders who type one family phone at checkout
    "shop/customers/customers_rules.csv": ACCOUNTS
    + "S21,padre.conti@example.it,,Carlo,Conti,2025-04-01 10:00:00,2025-04-01 10:00:00\n"
    + "S22,madre.conti@example.it,+39 351 0000022,Lucia,Conti,2025-04-02 10:00:00,2025-04-02 10:00:00\n"
    + "S23,marta.bruni@gmail.com,,Marta,Bruni,2025-04-03 10:00:00,2025-04-03 10:00:00\n"
    + "S24,gino.ricci@example.it,,Gino,Ricci,2025-04-04 10:00:00,2025-04-04 10:00:00\n"
    + "S25,lia.ricci@example.it,,Lia,Ricci,2025-04-05 10:00:00,2025-04-05 10:00:00\n"
    + "S26,g.richard@example.fr,,Guillaume,Richard,2025-04-06 10:00:00,2025-04-06 10:00:00\n"
    + "S27,DiegoCaputo@example.it,,Diego,Caputo,2025-04-07 10:00:00,2025-04-07 10:00:00\n"
    # (g) Anna's shop account under her married name; (h) Nuria's under her other surname,
    # with her email and phone; (i) the Neris, two people on one family email and phone
    + "S28,anna.rossi@example.it,,Anna,Bianchi,2025-04-08 10:00:00,2025-04-08 10:00:00\n"
    + "S29,nuria.m@example.es,+34 600 000 013,Nuria,Romero,2025-04-09 10:00:00,2025-04-09 10:00:00\n"
    + "S30,famiglia.neri@example.it,+39 351 0000030,Paolo,Neri,2025-04-10 10:00:00,2025-04-10 10:00:00\n"
    + "S31,famiglia.neri@example.it,+39 351 0000030,Sara,Neri,2025-04-11 10:00:00,2025-04-11 10:00:00\n",
    "shop/orders/orders_rules.csv": ORDERS
    + "O31,S24,gino.ricci@example.it,+39 351 0000031,2026-10-01 10:00:00,completed,20.00,web\n"
    + "O32,S25,lia.ricci@example.it,+39 351 0000031,2026-10-02 10:00:00,completed,30.00,web\n",
    # (j) each colleague's guest order on the hotel's mailbox, shipped to their own name (one in capitals)
    "shop/orders/orders_mailbox.csv": ORDERS.rstrip("\n") + ",shipping_first_name,shipping_last_name\n"
    + "O40,,amministrazione@hotelbelvedere.it,,2026-10-03 10:00:00,completed,40.00,web,SALVATORE,GIORDANO\n"
    + "O41,,amministrazione@hotelbelvedere.it,,2026-10-04 10:00:00,completed,41.00,web,Anna,Ferri\n",
    "events/events_rules.jsonl": "\n".join([
        # (b) three people identify on one computer with their own emails; the father logs in too
        event("F1", "identify", "CASA1", email="padre.conti@example.it"),
        event("F2", "identify", "CASA1", email="madre.conti@example.it"),
        event("F3", "identify", "CASA1", email="figlia.conti@example.it"),
        event("F4", "login", "CASA1", user_id="S21"),
        # (c) Marta logs in on her laptop and types her work address into a form
        event("F5", "login", "LAP1", user_id="S23"),
        event("F6", "form_submit", "LAP1", email="marta@studiobruni.it", first_name="Marta", last_name="Bruni",
              form_name="newsletter"),
        event("F7", "identify", "LAP1", email="marta.bruni@gmail.com"),
        # (e) Guillaume types his email into a form on his phone with his last name only: a last
        # name alone is no second person, so his email is not shared and the phone is his
        event("F8", "form_submit", "PH1", email="g.richard@example.fr", last_name="Richard", form_name="newsletter"),
    ]) + "\n",
}

# Each person's records: one customer each, all different.
PEOPLE = {
    "bottega_1": ["crm_contact_id:R1", "phone:+393510000011"],
    "bottega_2": ["crm_contact_id:R2", "phone:+393510000012"],
    "bottega_3": ["crm_contact_id:R3", "phone:+393510000013"],
    "carlo": ["shop_customer_id:S21", "email:padre.conti@example.it"],
    "lucia": ["shop_customer_id:S22", "email:madre.conti@example.it"],
    "irene": ["crm_contact_id:R4", "email:figlia.conti@example.it"],
    "marta": ["shop_customer_id:S23", "email:marta.bruni@gmail.com", "email:marta@studiobruni.it",
              "device_id:LAP1"],
    "doppio": ["crm_contact_id:R6", "crm_contact_id:R7", "email:doppio@example.it"],
    "ufficio": ["crm_contact_id:R8", "crm_contact_id:R9"],
    "gino": ["shop_customer_id:S24"],
    "lia": ["shop_customer_id:S25"],
    "guillaume": ["shop_customer_id:S26", "email:g.richard@example.fr", "device_id:PH1"],
    "diego": ["crm_contact_id:R10", "crm_contact_id:R11", "shop_customer_id:S27", "email:diegocaputo@example.it"],
    "anna": ["crm_contact_id:R12", "shop_customer_id:S28", "email:anna.rossi@example.it"],
    "nuria": ["crm_contact_id:R13", "crm_contact_id:R14", "shop_customer_id:S29", "email:nuria.m@example.es",
              "phone:+34600000013"],
    "paolo": ["shop_customer_id:S30"],
    "sara": ["shop_customer_id:S31"],
    "salvatore": ["crm_contact_id:R40", "guest_order_id:O40", "phone:+393914034895"],
    "anna_ferri": ["crm_contact_id:R41", "guest_order_id:O41", "phone:+393914034896"],
}


@pytest.fixture(scope="module")
def rules_warehouse(tmp_path_factory) -> Path:
    """The handcrafted exports plus RULE_FILES, ingested and built."""
    root = tmp_path_factory.mktemp("identity_rules")
    landing = root / "landing"
    shutil.copytree(FIXTURES / "handcrafted", landing, ignore=shutil.ignore_patterns("README.md"))
    for relative, text in RULE_FILES.items():
        (landing / relative).write_text(text)
    build_from_landing(landing, root / "warehouse.duckdb", HANDCRAFTED_AS_OF)
    return root / "warehouse.duckdb"


def customers_of(warehouse: Path) -> dict[str, str]:
    """person -> the one customer all their records resolved to."""
    return customer_of(warehouse, PEOPLE)


def test_each_person_is_one_customer_and_no_two_merge(rules_warehouse):
    ids = customers_of(rules_warehouse)
    assert len(set(ids.values())) == len(PEOPLE), f"people merged: {ids}"


def test_role_mailbox_of_nameless_contacts_is_shared_by_each(rules_warehouse):
    ids = customers_of(rules_warehouse)
    held = owners(rules_warehouse)
    assert held["email:info@bottega.it"] == {ids["bottega_1"], ids["bottega_2"], ids["bottega_3"]}
    shared = query(rules_warehouse, "select distinct is_shared from marts.customer_identifiers "
                                    "where identifier_value = 'info@bottega.it'")
    assert shared == [(True,)]


def test_family_computer_is_shared_and_merges_no_one(rules_warehouse):
    ids = customers_of(rules_warehouse)
    held = owners(rules_warehouse)
    assert held["device_id:CASA1"] == {ids["carlo"], ids["lucia"], ids["irene"]}
    assert query(rules_warehouse, "select distinct is_shared from marts.customer_identifiers "
                                  "where identifier_type = 'device_id' and identifier_value = 'CASA1'") == [(True,)]


def test_personal_and_work_email_on_one_device_link(rules_warehouse):
    ids = customers_of(rules_warehouse)
    held = owners(rules_warehouse)
    assert held["email:marta@studiobruni.it"] == held["email:marta.bruni@gmail.com"] == {ids["marta"]}


def test_family_phone_typed_at_checkout_is_shared(rules_warehouse):
    ids = customers_of(rules_warehouse)
    assert owners(rules_warehouse)["phone:+393510000031"] == {ids["gino"], ids["lia"]}


def explained(warehouse: Path, customer: str) -> list[tuple]:
    return query(warehouse, "select role, record_type, record_id, identifier_type, identifier_value, reason, people, "
                            f"max_people from marts.customer_identity_explained where customer_id = '{customer}'")


def test_explained_shows_records_edges_and_what_was_set_aside(rules_warehouse):
    ids = customers_of(rules_warehouse)
    rows = explained(rules_warehouse, ids["bottega_1"])
    assert ("record", "crm_contact_id", "R1", None, None, None, None, None) in rows
    assert ("link", "crm_contact_id", "R1", "phone", "+393510000011", None, None, None) in rows
    assert ("set_aside", "crm_contact_id", "R1", "email", "info@bottega.it", "shared", 3, 1) in rows
    marta = explained(rules_warehouse, ids["marta"])
    assert {(r[1], r[2]) for r in marta if r[0] == "record"} == {("shop_customer_id", "S23"), ("device_id", "LAP1")}
    assert ("link", "device_id", "LAP1", "email", "marta@studiobruni.it", None, None, None) in marta
    assert not [r for r in marta if r[0] == "set_aside"]


def test_explained_shows_placeholders_without_their_values(rules_warehouse):
    # Luca's CRM contact carries 'test@test.com' and '0000000000'
    (luca,) = owners(rules_warehouse)["crm_contact_id:C3"]
    aside = {r for r in explained(rules_warehouse, luca) if r[0] == "set_aside"}
    assert aside == {("set_aside", "crm_contact_id", "C3", "email", None, "placeholder", None, None),
                     ("set_aside", "crm_contact_id", "C3", "phone", None, "placeholder", None, None)}


def test_cli_prints_why_a_customer_is_who_they_are(rules_warehouse, capsys):
    from activations.cli import main

    ids = customers_of(rules_warehouse)
    assert main(["identity", " Marta@StudioBruni.it", "--warehouse", str(rules_warehouse)]) == 0
    out = capsys.readouterr().out
    assert f"customer {ids['marta']}" in out and "shop_customer_id S23" in out
    assert "device_id LAP1 -> email marta@studiobruni.it" in out

    assert main(["identity", "+39 351 0000011", "--warehouse", str(rules_warehouse)]) == 0
    out = capsys.readouterr().out
    assert "crm_contact_id R1 -> email info@bottega.it: shared: links 3 different people, more than the 1" in out

    assert main(["identity", "info@bottega.it", "--warehouse", str(rules_warehouse)]) == 0
    out = capsys.readouterr().out
    assert "belongs to 3 customers" in out and all(ids[p] in out for p in ("bottega_1", "bottega_2", "bottega_3"))

    assert main(["identity", ids["doppio"], "--warehouse", str(rules_warehouse)]) == 0
    out = capsys.readouterr().out
    assert "crm_contact_id R6 -> email doppio@example.it" in out and "crm_contact_id R7" in out


def test_cli_says_when_no_one_has_it(rules_warehouse, tmp_path, capsys):
    from activations.cli import main

    assert main(["identity", "nobody@nowhere.it", "--warehouse", str(rules_warehouse)]) == 1
    assert "no customer has 'nobody@nowhere.it'" in capsys.readouterr().out
    assert main(["identity", "--warehouse", str(rules_warehouse)]) == 2
    assert main(["identity", "x@y.it", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
    assert "no warehouse" in capsys.readouterr().err


def test_incremental_build_recounts_an_identifier_whose_neighbours_changed(rules_warehouse, tmp_path):
    # R8 and R9 shared only ufficio@ (one customer). New versions give each its own email and
    # phone: no new sighting of ufficio@ itself, yet it now links two people and is shared.
    # And a later guest order on the hotel's mailbox under Salvatore's name joins his customer:
    # an incremental build reaches his old contact too, as a full rebuild does.
    incremental = tmp_path / "incremental.duckdb"
    shutil.copy(rules_warehouse, incremental)
    landing = tmp_path / "landing" / "crm" / "contacts"
    landing.mkdir(parents=True)
    (landing / "contacts_later.csv").write_text(
        CONTACTS
        + "R8,anna.b@example.it,+39 351 0000088,,,2025-03-08 10:00:00,2026-11-19 10:00:00\n"
        + "R9,bruno.c@example.it,+39 351 0000099,,,2025-03-09 10:00:00,2026-11-19 10:00:00\n")
    orders = tmp_path / "landing" / "shop" / "orders"
    orders.mkdir(parents=True)
    (orders / "orders_later.csv").write_text(
        ORDERS.rstrip("\n") + ",shipping_first_name,shipping_last_name\n"
        + "O42,,amministrazione@hotelbelvedere.it,,2026-11-19 09:00:00,completed,42.00,web,Salvatore,Giordano\n")
    assert not load_landing(tmp_path / "landing", incremental).failed_files
    assert build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=incremental).ok
    rebuilt = tmp_path / "rebuilt.duckdb"
    shutil.copy(incremental, rebuilt)
    assert build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=rebuilt, full_refresh=True).ok

    expected, got = tables(rebuilt), tables(incremental)
    for name, rows in expected.items():
        assert got[name] == rows, f"{name} differs after an incremental build"
    held = owners(incremental)
    assert held["guest_order_id:O42"] == held["crm_contact_id:R40"] == owners(rules_warehouse)["crm_contact_id:R40"]
    assert held["crm_contact_id:R8"] != held["crm_contact_id:R9"]
    assert held["email:ufficio@example.it"] == held["crm_contact_id:R8"] | held["crm_contact_id:R9"]


def test_a_last_name_alone_is_no_second_person(rules_warehouse):
    # Guillaume's form on his phone carried his last name only: his email stays his, not shared.
    ids = customers_of(rules_warehouse)
    assert owners(rules_warehouse)["email:g.richard@example.fr"] == {ids["guillaume"]}
    assert query(rules_warehouse, "select distinct is_shared from marts.customer_identifiers "
                                  "where identifier_value = 'g.richard@example.fr'") == [(False,)]


def test_a_name_written_surname_first_names_the_same_person(rules_warehouse):
    # "Caputo, Diego" beside "Diego Caputo" on one email is one person, not two: the email is
    # not shared and his three records are one customer (it counted as two names before).
    ids = customers_of(rules_warehouse)
    assert owners(rules_warehouse)["email:diegocaputo@example.it"] == {ids["diego"]}
    assert query(rules_warehouse, "select distinct is_shared from marts.customer_identifiers "
                                  "where identifier_value = 'diegocaputo@example.it'") == [(False,)]


def test_a_new_surname_on_the_same_record_is_the_same_person(rules_warehouse):
    # Anna's contact changed its last name; her shop account has the new one. Her email carries
    # two names, but one record carried both: one person, the email is not shared.
    ids = customers_of(rules_warehouse)
    assert owners(rules_warehouse)["email:anna.rossi@example.it"] == {ids["anna"]}


def test_a_shop_account_under_another_surname_with_her_email_and_phone_is_the_same_person(rules_warehouse):
    # Two CRM contacts "Nuria Martín" and a shop account "Nuria Romero" share her email and her
    # phone: the same first name on records with two identifiers in common is one person under
    # another surname. Both identifiers were shared (two names), so not even the two identical
    # contacts merged.
    ids = customers_of(rules_warehouse)
    held = owners(rules_warehouse)
    assert held["email:nuria.m@example.es"] == held["phone:+34600000013"] == {ids["nuria"]}


def test_two_first_names_on_one_family_email_and_phone_stay_two_people(rules_warehouse):
    ids = customers_of(rules_warehouse)
    held = owners(rules_warehouse)
    assert held["email:famiglia.neri@example.it"] == held["phone:+393510000030"] == {ids["paolo"], ids["sara"]}


def test_a_shared_mailbox_joins_each_colleagues_guest_order_to_them_by_name(rules_warehouse):
    # The hotel's mailbox links two people, so it merges no one; under one name it joins each
    # colleague's guest order to their own contact (they belonged to no customer before), and
    # says so when asked why.
    ids = customers_of(rules_warehouse)
    assert owners(rules_warehouse)["email:amministrazione@hotelbelvedere.it"] == {ids["salvatore"], ids["anna_ferri"]}
    rows = explained(rules_warehouse, ids["salvatore"])
    assert {(r[1], r[2]) for r in rows if r[0] == "record"} == {("crm_contact_id", "R40"), ("guest_order_id", "O40")}
    assert ("set_aside", "guest_order_id", "O40", "email", "amministrazione@hotelbelvedere.it", "shared", 2, 1) in rows
    source = query(rules_warehouse, "select source from marts.customer_identity_explained where record_id = 'O40' "
                                    "and role = 'link' and identifier_value = 'R40'")
    assert source == [("shared_under_one_name",)]
