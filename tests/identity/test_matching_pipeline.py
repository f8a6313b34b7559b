"""Probabilistic matching in the pipeline: real landing files, ingestion, `attiva build` (dbt on a
DuckDB file, with the matching step between staging and the identity models), the review CLI.

One warehouse, used the way a user does, in order: a first build; a reviewer accepts one pair and
rejects another; new landing files (one changed record) and a second build.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FIXTURES, build_from_landing

# One worker builds the module's warehouses once (without it each worker running one of these tests built them again).
pytestmark = pytest.mark.xdist_group("matching_pipeline")

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CRM_HEADER = ("contact_id,email,phone,first_name,last_name,company,job_title,country,city,birth_date,"
              "lifecycle_stage,lead_source,became_lead_at,became_mql_at,became_sql_at,became_customer_at,"
              "created_at,updated_at")
SHOP_HEADER = "shop_customer_id,email,phone,first_name,last_name,birth_date,country,city,postal_code,created_at,updated_at"
# M1: one person, a typo in the shop email and a new phone: no identifier in common.
# M3: same name, birth date and city, other email: the model merges them; a reviewer rejects it.
# M4: a family's email and phone on two different people: shared, it must not support a match.
# M5: same name and city, other email: the review band; a reviewer accepts it.
# M6: same name and email, but his wife typed that email into a form with her name: the rules
# count the email shared, so it never supports a match, from the first build on (it once did on
# the first build, which read only CRM and shop names, and stopped at the second); the rules
# join his two records under his one name.
CRM = [
    "M1,francesca.esposito@gmail.com,+39 347 1112233,Francesca,Esposito,,,IT,Bologna,1988-03-14,customer,web_form,,,,,"
    "2025-01-10 10:00:00,2025-01-10 10:00:00",
    "M3,chiara.romano@tiscali.it,+39 340 5550000,Chiara,Romano,,,IT,Padova,1993-02-02,lead,web_form,,,,,"
    "2025-01-11 10:00:00,2025-01-11 10:00:00",
    "M4,famiglia.conti@gmail.com,+39 333 1110000,Paolo,Conti,,,IT,Parma,1970-01-20,lead,web_form,,,,,"
    "2025-01-12 10:00:00,2025-01-12 10:00:00",
    "M5,mferrari@libero.it,+39 340 1234000,Marco,Ferrari,,,IT,Verona,,lead,web_form,,,,,"
    "2025-01-13 10:00:00,2025-01-13 10:00:00",
    "M6,luca.verdi@gmail.com,,Luca,Verdi,,,IT,Torino,,lead,web_form,,,,,2025-01-14 10:00:00,2025-01-14 10:00:00",
]
SHOP = [
    "M1,francesca.esposito@gmial.com,+39 348 9998877,Francesca,Esposito,1988-03-14,IT,Bologna,40121,"
    "2025-02-10 10:00:00,2025-02-10 10:00:00",
    "M3,c.romano93@gmail.com,,Chiara,Romano,1993-02-02,IT,Padova,35121,2025-02-11 10:00:00,2025-02-11 10:00:00",
    "M4,famiglia.conti@gmail.com,+39 333 1110000,Sara,Conti,1972-09-09,IT,Parma,43121,"
    "2025-02-12 10:00:00,2025-02-12 10:00:00",
    "M5,marco.f@gmail.com,,Marco,Ferrari,,IT,Verona,,2025-02-13 10:00:00,2025-02-13 10:00:00",
    "M6,luca.verdi@gmail.com,,Luca,Verdi,,IT,Torino,,2025-02-14 10:00:00,2025-02-14 10:00:00",
]
EVENTS = ['{"event_id":"M6E1","event_type":"form_submit","occurred_at":"2026-11-10T10:00:00Z","anonymous_id":"M6DEV",'
          '"platform":"web","email":"luca.verdi@gmail.com","first_name":"Anna","last_name":"Verdi",'
          '"form_name":"newsletter"}']
# The second delivery: a new version of one CRM contact (a new phone), nothing else.
CRM_LATER = ["M3,chiara.romano@tiscali.it,+39 340 5550001,Chiara,Romano,,,IT,Padova,1993-02-02,lead,web_form,,,,,"
             "2025-01-11 10:00:00,2026-03-01 10:00:00"]


def write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def customer_of(warehouse: Path, node: str) -> str:
    found = rows(warehouse, "select customer_id from intermediate.int_identity__customer_nodes where node = ?", [node])
    assert len(found) == 1, f"{node}: {found}"
    return found[0][0]


def link(warehouse: Path, name: str) -> tuple:
    """(pair_id, status, scored_at) of the pair CRM contact `name` ~ shop account `name`."""
    found = rows(warehouse, "select pair_id, status, scored_at from matching.links where record_id_l = ? "
                            "and record_id_r = ?", [f"crm_contact_id:{name}", f"shop_customer_id:{name}"])
    assert len(found) <= 1
    return found[0] if found else (None, None, None)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from activations.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@dataclass
class Used:
    warehouse: Path
    landing: Path
    first: dict  # after the first build: node -> customer id, for every CRM contact and shop account
    review_listing: str
    second_build: object  # BuildResult


def owners(warehouse: Path) -> dict[str, str]:
    return dict(rows(warehouse, "select node, customer_id from intermediate.int_identity__customer_nodes "
                                "where node like 'crm_contact_id:%' or node like 'shop_customer_id:%'"))


@pytest.fixture(scope="module")
def thresholds():
    """The thresholds these people were written for (the model's defaults may move): merge at 0.99, review
    from 0.5."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTIVA_MATCH_THRESHOLD", "0.99")
        patch.setenv("ATTIVA_REVIEW_THRESHOLD", "0.5")
        yield


@pytest.fixture(scope="module")
def used(tmp_path_factory, capsys_module, thresholds) -> Used:
    base = tmp_path_factory.mktemp("matching")
    landing, warehouse = base / "landing", base / "warehouse.duckdb"
    shutil.copytree(FIXTURES / "handcrafted", landing, ignore=shutil.ignore_patterns("README.md"))
    write_csv(landing / "crm" / "contacts" / "matching.csv", CRM_HEADER, CRM)
    write_csv(landing / "shop" / "customers" / "matching.csv", SHOP_HEADER, SHOP)
    (landing / "events" / "matching.jsonl").write_text("\n".join(EVENTS) + "\n")
    build_from_landing(landing, warehouse, AS_OF)
    first = owners(warehouse)
    review_listing = capsys_module(["identity", "--review", "--warehouse", str(warehouse)])
    return Used(warehouse, landing, first, review_listing, None)


@pytest.fixture(scope="module")
def capsys_module():
    """Run the CLI and return what it printed (module-scoped fixtures cannot use capsys)."""
    import contextlib
    import io

    from activations.cli import main

    def run(argv: list[str], expect: int = 0) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(argv)
        assert code == expect, out.getvalue()
        return out.getvalue()

    return run


@pytest.fixture(scope="module")
def rebuilt(used: Used, capsys_module) -> Used:
    """The reviewer's decisions, one changed CRM contact landed, and a second build."""
    accept, reject = link(used.warehouse, "M5")[0], link(used.warehouse, "M3")[0]
    capsys_module(["identity", "--accept", accept, "--warehouse", str(used.warehouse)])
    capsys_module(["identity", "--reject", reject, "--warehouse", str(used.warehouse)])
    write_csv(used.landing / "crm" / "contacts" / "matching_later.csv", CRM_HEADER, CRM_LATER)
    _, result = build_from_landing(used.landing, used.warehouse, AS_OF)
    used.second_build = result
    return used


def test_one_person_with_no_identifier_in_common_becomes_one_customer(used):
    assert link(used.warehouse, "M1")[1] == "merged"
    assert customer_of(used.warehouse, "crm_contact_id:M1") == customer_of(used.warehouse, "shop_customer_id:M1")
    # the link reached the customer's identifiers, saying where it came from
    assert ("probable_match",) in rows(used.warehouse, "select distinct source from marts.customer_identifiers "
                                                       "where identifier_value = 'M1'")


def test_a_shared_identifier_never_supports_a_match(used):
    from activations.identity.matching import read_records
    from activations.warehouse import connect

    with connect(used.warehouse, read_only=True) as con:
        records = {r["record_id"]: r for r in read_records(con).to_pylist()}
    for node in ("crm_contact_id:M4", "shop_customer_id:M4"):
        assert records[node]["email"] is None and records[node]["phone"] is None, records[node]
    assert link(used.warehouse, "M4") == (None, None, None)
    assert customer_of(used.warehouse, "crm_contact_id:M4") != customer_of(used.warehouse, "shop_customer_id:M4")


def test_an_identifier_shared_through_an_event_is_set_aside_from_the_first_build(used):
    # Luca's email carries his wife's name on a form (an event, not a person record): shared by
    # the rules, so even the first build scores his two records without it and matching does not
    # merge them. The rules join them instead: both carry the shared email under his one name.
    assert link(used.warehouse, "M6")[1] != "merged"
    assert customer_of(used.warehouse, "crm_contact_id:M6") == customer_of(used.warehouse, "shop_customer_id:M6")
    assert rows(used.warehouse, "select source from marts.customer_identity_explained "
                                "where record_id = 'M6' and role = 'link' and identifier_type in "
                                "('crm_contact_id', 'shop_customer_id')") == [("shared_under_one_name",)]


def test_a_pair_in_the_review_band_is_listed_and_links_nobody_until_accepted(used):
    pair, status, _ = link(used.warehouse, "M5")
    assert status == "review"
    assert pair in used.review_listing and "crm_contact_id:M5" in used.review_listing
    assert customer_of(used.warehouse, "crm_contact_id:M5") != customer_of(used.warehouse, "shop_customer_id:M5")


def test_an_accepted_pair_merges_at_the_next_build(rebuilt):
    assert link(rebuilt.warehouse, "M5")[1] == "accepted"
    assert customer_of(rebuilt.warehouse, "crm_contact_id:M5") == customer_of(rebuilt.warehouse, "shop_customer_id:M5")
    # ... under one of the two ids it had, and nobody else's id changed
    assert customer_of(rebuilt.warehouse, "crm_contact_id:M5") in {
        rebuilt.first["crm_contact_id:M5"], rebuilt.first["shop_customer_id:M5"]}


def test_a_rejected_pair_is_split_and_stays_rejected_when_rescored(rebuilt):
    pair, status, scored_at = link(rebuilt.warehouse, "M3")
    assert rebuilt.first["crm_contact_id:M3"] == rebuilt.first["shop_customer_id:M3"], "merged before the decision"
    assert status == "rejected"
    last_run = rows(rebuilt.warehouse, "select max(started_at) from matching.runs")[0][0]
    assert scored_at == last_run, "the changed contact's pair was scored again"
    assert customer_of(rebuilt.warehouse, "crm_contact_id:M3") != customer_of(rebuilt.warehouse, "shop_customer_id:M3")
    assert "crm_contact_id:M3" not in cli_queue(rebuilt)


def cli_queue(used: Used) -> str:
    from activations.identity import review
    from activations.warehouse import connect

    with connect(used.warehouse, read_only=True) as con:
        return review.format_queue(review.queue(con))


def test_a_second_build_scores_only_the_changed_record_and_keeps_customer_ids(rebuilt):
    runs = rows(rebuilt.warehouse, "select records, new_records, started_at from matching.runs order by started_at")
    assert len(runs) == 2 and runs[0][0] == runs[0][1], runs  # the first run scored everyone
    assert runs[1][:2] == (runs[0][0], 1)  # the second, only the changed contact
    scored = rows(rebuilt.warehouse, "select record_id_l, record_id_r from matching.links where scored_at = ?",
                  [runs[1][2]])
    assert scored and all("crm_contact_id:M3" in pair for pair in scored), scored
    assert "matching: 1 new or changed" in str(rebuilt.second_build)
    after = owners(rebuilt.warehouse)
    moved = {node for node, customer in rebuilt.first.items() if after.get(node) != customer}
    # only the split (M3: one side gets a new id) and the merge (M5: one side takes the other's id) move
    assert moved <= {"crm_contact_id:M3", "shop_customer_id:M3", "crm_contact_id:M5", "shop_customer_id:M5"}, moved
    assert len(moved & {"crm_contact_id:M5", "shop_customer_id:M5"}) == 1


def test_an_unknown_pair_is_refused_by_name(used, capsys):
    code, _, err = cli(capsys, "identity", "--accept", "pair_nope", "--warehouse", str(used.warehouse))
    assert code == 1 and "no pair 'pair_nope'" in err


def _upgraded(used, tmp_path, change_model) -> tuple[Path, list]:
    """A copy of the used warehouse whose kept model an older version wrote otherwise
    (`change_model` edits it in place); then two matching runs on it, nothing new landed."""
    import json

    from activations.identity.matching import run_matching

    warehouse = tmp_path / "upgraded.duckdb"
    shutil.copy(used.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        model = json.loads(con.execute("select model from matching.models").fetchone()[0])
        change_model(model)
        con.execute("update matching.models set model = ?", [json.dumps(model)])
        runs = [run_matching(con, now=datetime.now(UTC)) for _ in range(2)]
    return warehouse, runs


def _email(model: dict) -> dict:
    return next(c for c in model["comparisons"] if c["output_column_name"] == "email")


def test_a_model_kept_by_an_older_version_is_trained_again_on_everyone(used, tmp_path):
    # A warehouse whose kept model predates a level of today's comparisons (an upgrade): the next
    # run must not score new records with it, which would never use the new level; it trains a new
    # model and scores every record again, nothing new landed.
    import json

    def without_the_slip(model: dict) -> None:
        email = _email(model)
        email["comparison_levels"] = [level for level in email["comparison_levels"]
                                      if level.get("label_for_charts") != "one slip apart"]

    warehouse, (result, then) = _upgraded(used, tmp_path, without_the_slip)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        kept = json.loads(con.execute("select model from matching.models order by trained_at desc limit 1").fetchone()[0])

    assert result.new_records == result.records > 0, result
    assert then.new_records == 0, then  # the model kept now is today's
    labels = [level.get("label_for_charts") for c in kept["comparisons"] if c["output_column_name"] == "email"
              for level in c["comparison_levels"]]
    assert "one slip apart" in labels


def test_a_model_whose_level_was_redefined_since_is_trained_again(used, tmp_path):
    # The same levels, one of them defined otherwise by an older version (the email slip before a
    # letter swapped with a dot counted): the kept model carries its own SQL and would score with it.
    def an_older_slip(model: dict) -> None:
        slip = next(level for level in _email(model)["comparison_levels"] if level.get("label_for_charts") == "one slip apart")
        slip["sql_condition"] = '"email_l" <> "email_r" AND damerau_levenshtein("email_l", "email_r") = 1'

    _, (again, then) = _upgraded(used, tmp_path, an_older_slip)

    assert again.new_records == again.records > 0, again
    assert then.new_records == 0, then  # the model kept now is today's


def test_a_model_trained_the_older_way_is_trained_again(used, tmp_path):
    # The same comparisons, trained by a version whose u rested on early-stopped samples and whose
    # EM kept a pass that took strangers for matches (no "attiva_training" mark): retrained once.
    def trained_the_older_way(model: dict) -> None:
        model.pop("attiva_training")

    _, (again, then) = _upgraded(used, tmp_path, trained_the_older_way)

    assert again.new_records == again.records > 0, again
    assert then.new_records == 0, then
