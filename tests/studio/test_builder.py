"""The audience builder: conditions checked one by one (an invalid one explained next to it), the live
size equal to a direct count on the warehouse, and saving: refused for a name that exists or over a
dirty working tree (losing nothing typed), else a new branch audiences/<name> with the model and its
YAML, the working tree and checked-out branch untouched, and a model that `dbt build` builds and tests.

The console saves into a throwaway clone of this repository (never the real one's branches); the
browser test builds an audience with two conditions in chromium, sees its size change, and saves it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from activations.build import dbt_command, run_dbt
from activations.destinations.config import read_destinations
from activations.manifest import declared_syncs, load_manifest
from activations.serve.app import running_server
from activations.studio import builder
from activations.studio.app import Studio, create_app
from tests.conftest import HANDCRAFTED_AS_OF
from tests.studio.conftest import SECRET, Visitor, form_token, text_of
from tests.studio.test_browser import chromium, log_in  # noqa: F401 - the browser fixture, shared

ROOT = Path(__file__).resolve().parents[2]
# Champions or loyal customers who may receive marketing email (Mario and others of the handcrafted warehouse).
TWO_CONDITIONS = {"c0_choice": "trait:rfm_segment", "c0_op": "in", "c0_value": "champion, loyal",
                  "c1_choice": "consent:email_marketable"}
VIEWED_TEA = ("select e.customer_id from marts.events as e inner join marts.products as p on e.product_id = "
              "p.product_id where e.event_type = 'product_view' and p.category = 'tea' and e.customer_id is not null "
              "and e.occurred_at > timestamp '2026-11-20 12:00' - interval 30 day "
              "and e.occurred_at <= timestamp '2026-11-20 12:00'")
DIRECT_COUNT = ("select count(*) from marts.customers where rfm_segment in ('champion', 'loyal') "
                "and email_marketable")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A clone of this repository, at its HEAD, for the console to save branches into."""
    clone = tmp_path_factory.mktemp("builder") / "attiva"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    return clone


@pytest.fixture(scope="module")
def builder_console(studio: Studio, repo: Path) -> Iterator[str]:
    saving_studio = Studio(studio.users_path, studio.warehouse_path, destinations_path=ROOT / "destinations.yml",
                           project_root=repo)
    with running_server(create_app(saving_studio, SECRET)) as url:
        yield url


def signed_in(console: str, name: str) -> Visitor:
    visitor = Visitor(console)
    assert visitor.log_in(name).status_code == 200
    return visitor


@pytest.fixture
def marketer(builder_console) -> Visitor:
    return signed_in(builder_console, "mara")


def post_builder(visitor: Visitor, path: str, data: dict):
    """Post the builder's form with the token of the builder page, as the browser does."""
    return visitor.post(path, {"csrf_token": form_token(visitor.get("/builder").text), **data}, token=False)


def test_a_viewer_can_neither_open_the_builder_nor_count_nor_save(builder_console, repo):
    viewer = signed_in(builder_console, "vera")
    assert viewer.get("/builder").status_code == 403
    assert viewer.get("/builder/saved/aud_champions").status_code == 403
    assert 'href="/builder"' not in viewer.get("/audiences").text
    token = form_token(viewer.get("/audiences").text)
    for path in ("/builder", "/builder/estimate", "/builder/save"):
        answer = viewer.post(path, {"csrf_token": token, **TWO_CONDITIONS, "name": "aud_by_a_viewer",
                                    "description": "Not allowed"}, token=False)
        assert answer.status_code == 403, path
    assert "audiences/aud_by_a_viewer" not in git(repo, "branch", "--list")


def test_an_invalid_condition_is_explained_next_to_it(marketer):
    form = {"c0_choice": "trait:orders_count", "c0_op": ">", "c0_value": "many",
            "c1_choice": "event:product_view", "c1_days": "0",
            "c2_choice": "trait:rfm_segment", "c2_op": "<", "c2_value": "champion",
            "c3_choice": "consent:email_marketable"}
    answer = post_builder(marketer, "/builder/estimate", form)
    assert answer.status_code == 200
    found = answer.json()
    assert found["problems"] == {"0": "'many' is not a number",
                                 "1": "the number of days must be a whole number from 1 to 3650",
                                 "2": "'<' does not apply here"}
    assert found["count"] is not None  # the valid condition still counts
    page = post_builder(marketer, "/builder", form)
    assert page.status_code == 200
    assert '<td colspan="5" class="bad problem" id="problem-0">&#39;many&#39; is not a number</td>' in page.text
    assert "id=\"problem-3\"></td>" in page.text


def test_the_size_estimate_is_a_direct_count_of_the_warehouse(marketer, studio):
    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        expected = con.execute(DIRECT_COUNT).fetchone()[0]
        viewed = con.execute(f"select count(distinct customer_id) from ({VIEWED_TEA})").fetchone()[0]
    started = time.monotonic()
    found = post_builder(marketer, "/builder/estimate", TWO_CONDITIONS).json()
    assert time.monotonic() - started < 1.0
    assert found == {"count": expected, "as_of": "as of 2026-11-20 12:00 UTC", "error": None, "problems": {}}
    assert expected > 0
    events = post_builder(marketer, "/builder/estimate", {"c0_choice": "event:product_view", "c0_category": "tea",
                                                         "c0_times": "1", "c0_days": "30"}).json()
    assert events["count"] == viewed and viewed > 0
    # An OR group: champions, or tea viewers (the rows sharing group A); and, apart, marketable by email.
    either = post_builder(marketer, "/builder/estimate", {
        "c0_choice": "trait:rfm_segment", "c0_op": "=", "c0_value": "champion", "c0_group": "A",
        "c1_choice": "consent:email_marketable",
        "c2_choice": "event:product_view", "c2_category": "tea", "c2_times": "1", "c2_days": "30", "c2_group": "A"})
    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        expected_either = con.execute(f"select count(*) from marts.customers where email_marketable and "
                                      f"(rfm_segment = 'champion' or customer_id in ({VIEWED_TEA}))").fetchone()[0]
    assert either.json()["count"] == expected_either and expected_either > 0


def test_text_becomes_a_literal_read_back_as_typed_and_braces_never_reach_jinja(tmp_path):
    catalog = builder.Catalog(builder.customer_columns(ROOT))
    city = builder.Condition("trait", "city", "in", "L'Aquila, Milano")
    assert builder.render(city, catalog, builder.DBT) == "c.city in (('L' || chr(39) || 'Aquila'), 'Milano')"
    assert duckdb.sql("select " + builder.text_literal("'it''s'")).fetchall() == [("'it''s'",)]
    for typed in ("{{ run_query('drop table x') }}", "a\\nb", "two\nlines"):
        with pytest.raises(builder.Invalid, match="braces, backslashes or line breaks"):
            builder.render(builder.Condition("trait", "city", "=", typed), catalog, builder.DBT)
    # A warehouse older than the project's YAML: the size says so instead of failing the page.
    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:
        con.execute("create schema marts; create table marts.customers (customer_id varchar)")
        count, checked = builder.estimate(con, [builder.Condition("trait", "rfm_segment", "=", "champion")], catalog,
                                          HANDCRAFTED_AS_OF)
    assert count is None and "rebuild it" in checked.error


# The saved audience: champions and loyal customers, or tea viewers (an OR group), we may email.
SAVED_OR = {"c0_group": "A", "c2_choice": "event:product_view", "c2_category": "tea", "c2_times": "1", "c2_days": "30",
            "c2_group": "A"}
SAVED_COUNT = ("select count(*) from marts.customers where email_marketable and (rfm_segment in ('champion', 'loyal') "
               f"or customer_id in ({VIEWED_TEA}))")


def save_form(name: str, **extra) -> dict:
    return {**TWO_CONDITIONS, "name": name, "description": "Champions and loyal customers we may email",
            "sync_destination": "mailchimp", "sync_mode": "mirror", "sync_consent": "email_marketable", **extra}


def test_saving_refuses_a_name_that_exists_or_a_dirty_tree_and_keeps_the_form(marketer, repo):
    branches = git(repo, "branch", "--list")
    taken = post_builder(marketer, "/builder/save", save_form("aud_champions"))
    assert taken.status_code == 409
    assert "Not saved: a model named aud_champions exists already" in text_of(taken.text)
    assert 'value="aud_champions"' in taken.text and "Champions and loyal customers we may email" in taken.text
    assert 'value="champion, loyal"' in taken.text and 'value="mailchimp" selected' in taken.text

    (repo / "dbt_project" / "models" / "audiences" / "scratch.sql").write_text("select 1\n")
    try:
        dirty = post_builder(marketer, "/builder/save", save_form("aud_new_fans"))
        assert dirty.status_code == 409
        assert ("uncommitted changes (dbt_project/models/audiences/scratch.sql): commit or stash them first"
                in text_of(dirty.text))
        assert 'value="aud_new_fans"' in dirty.text
    finally:
        (repo / "dbt_project" / "models" / "audiences" / "scratch.sql").unlink()

    wrong = post_builder(marketer, "/builder/save", save_form("aud_new_fans", sync_destination="hubspot",
                                                              sync_mode="update"))
    assert wrong.status_code == 409 and "the sync cannot work" in text_of(wrong.text)
    bad_name = post_builder(marketer, "/builder/save", save_form("Champions 2"))
    assert bad_name.status_code == 409 and "the name must be aud_" in text_of(bad_name.text)
    assert git(repo, "branch", "--list") == branches  # nothing written


@pytest.fixture(scope="module")
def saved(builder_console, repo) -> dict:
    """aud_email_champions saved by the marketer: the page after saving, and the repository before and after."""
    before = {"head": git(repo, "rev-parse", "HEAD"), "branch": git(repo, "rev-parse", "--symbolic-full-name", "HEAD"),
              "status": git(repo, "status", "--porcelain"), "index": (repo / ".git" / "index").read_bytes()}
    page = post_builder(signed_in(builder_console, "mara"), "/builder/save", save_form("aud_email_champions", **SAVED_OR))
    return {"page": page, "before": before}


def test_saving_makes_a_branch_with_the_model_and_its_yaml_and_leaves_the_checkout_alone(saved, repo):
    page = saved["page"]
    assert page.status_code == 200 and page.url.endswith("/builder/saved/aud_email_champions")
    commit = git(repo, "rev-parse", "refs/heads/audiences/aud_email_champions").strip()
    text = text_of(page.text)
    assert f"On branch audiences/aud_email_champions , commit {commit} ." in text
    assert "an engineer reviews the change below" in text and "2 files changed" in text
    assert git(repo, "rev-parse", "HEAD") == saved["before"]["head"]
    assert git(repo, "rev-parse", "--symbolic-full-name", "HEAD") == saved["before"]["branch"]
    assert git(repo, "status", "--porcelain") == saved["before"]["status"] == ""
    assert (repo / ".git" / "index").read_bytes() == saved["before"]["index"]
    assert not (repo / "dbt_project" / "models" / "audiences" / "aud_email_champions.sql").exists()
    assert git(repo, "rev-parse", f"{commit}^").strip() == saved["before"]["head"].strip()
    changed = git(repo, "diff-tree", "--no-commit-id", "--name-status", "-r", commit).split("\n")
    assert changed[:2] == ["A\tdbt_project/models/audiences/aud_email_champions.sql",
                           "A\tdbt_project/models/audiences/aud_email_champions.yml"]
    assert git(repo, "log", "-1", "--format=%an <%ae>%n%s", commit) == (
        "mara <mara@attiva-studio.local>\naud_email_champions: Champions and loyal customers we may email\n")

    sql = git(repo, "show", f"{commit}:dbt_project/models/audiences/aud_email_champions.sql")
    assert sql.startswith("-- Champions and loyal customers we may email\n-- Built in the console (attiva studio) "
                          "by mara on ")
    assert ("--   - either rfm_segment is one of champion, loyal, or product_view in category tea at least once in "
            "the 30 days before as_of\n--   - email_marketable (consent given)\n") in sql
    assert ("from {{ ref('customers') }} as c\nwhere (\n    c.rfm_segment in ('champion', 'loyal')\n"
            "    or c.customer_id in (\n") in sql and "\n  )\n  and c.email_marketable = true\n" in sql
    model = yaml.safe_load(git(repo, "show", f"{commit}:dbt_project/models/audiences/aud_email_champions.yml"))
    [entry] = model["models"]
    assert entry["config"]["contract"] == {"enforced": True}
    assert entry["config"]["meta"]["activations"] == [{
        "destination": "mailchimp", "mode": "mirror", "consent": "email_marketable",
        "identifiers": {"email": "email"}, "key": "email"}]
    columns = {c["name"]: c for c in entry["columns"]}
    assert list(columns)[:2] == ["customer_id", "email"] and columns["rfm_segment"]["data_type"] == "string"
    assert columns["customer_id"]["data_tests"][:2] == ["unique", "not_null"]


def test_saving_the_same_name_again_is_refused(saved, marketer, repo):
    again = post_builder(marketer, "/builder/save", save_form("aud_email_champions"))
    assert again.status_code == 409
    assert "the branch audiences/aud_email_champions exists already" in text_of(again.text)


def test_the_saved_model_builds_and_passes_its_tests_with_dbt(saved, repo, studio, tmp_path, monkeypatch):
    checkout = tmp_path / "review"
    git(repo, "worktree", "add", "-q", str(checkout), "audiences/aud_email_champions")
    try:
        warehouse = tmp_path / "warehouse.duckdb"
        shutil.copyfile(studio.warehouse_path, warehouse)
        monkeypatch.setenv("ATTIVA_HOME", str(checkout))
        result = run_dbt(dbt_command("build", HANDCRAFTED_AS_OF, select="aud_email_champions"), warehouse=warehouse)
        assert result.ok, str(result) + result.output[-3000:]
        assert result.counts.get("pass") == 3 and not result.failures  # unique, not_null, relationships
        with duckdb.connect(str(warehouse), read_only=True) as con:
            built = con.execute("select count(*) from audiences.aud_email_champions").fetchone()[0]
            expected = con.execute(SAVED_COUNT).fetchone()[0]
            without_the_or = con.execute(DIRECT_COUNT).fetchone()[0]
        assert built == expected and built > without_the_or
        # The manifest that build wrote declares the sync, and the engine's own reading finds it runnable.
        declared = declared_syncs(load_manifest(tmp_path / "dbt_target" / "manifest.json"),
                                  read_destinations(ROOT / "destinations.yml"))
        assert declared.broken_named("aud_email_champions__mailchimp") is None
        [sync] = [s for s in declared.syncs if s.audience.name == "aud_email_champions"]
        assert (sync.destination, sync.mode, sync.consent, sync.key) == ("mailchimp", "mirror", "email_marketable",
                                                                         "email")
    finally:
        git(repo, "worktree", "remove", "--force", str(checkout))


@pytest.mark.browser
def test_a_marketer_builds_an_audience_sees_its_size_and_saves_it(chromium, builder_console, studio, repo):  # noqa: F811
    from playwright.sync_api import expect

    with duckdb.connect(str(studio.warehouse_path), read_only=True) as con:
        everyone = con.execute("select count(*) from marts.customers").fetchone()[0]
        expected = con.execute(DIRECT_COUNT).fetchone()[0]
    context, page = log_in(chromium, builder_console, "mara")
    page.goto(builder_console + "/builder")
    page.select_option("select[name=c0_choice]", "trait:rfm_segment")
    # A text column takes no "<": the page hides the operators its type does not take.
    assert page.locator("select[name=c0_op] option[value='<']").get_attribute("hidden") is not None
    assert page.locator("select[name=c0_op] option[value='in']").get_attribute("hidden") is None
    page.select_option("select[name=c0_op]", "in")
    page.fill("input[name=c0_value]", "champion, loyal")
    expect(page.locator("#estimate-count")).not_to_have_text("–")  # polled: the page's CSP forbids eval
    first = page.inner_text("#estimate-count")
    page.select_option("select[name=c1_choice]", "consent:email_marketable")
    expect(page.locator("#estimate-count")).to_have_text(f"{expected:,}")
    assert expected < int(first.replace(",", "")) <= everyone and "as of 2026-11-20 12:00 UTC" in page.inner_text("#estimate")
    page.fill("#name", "aud_browser_champions")
    page.fill("#description", "Champions and loyal customers, built in the browser")
    page.click("#save")
    page.wait_for_url(builder_console + "/builder/saved/aud_browser_champions")
    assert page.inner_text("#branch") == "audiences/aud_browser_champions"
    assert "aud_browser_champions.yml" in page.inner_text("#diff")
    assert git(repo, "rev-parse", "refs/heads/audiences/aud_browser_champions").strip() == page.inner_text("#commit")
    context.close()
