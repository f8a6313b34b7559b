"""What the docs promise: the README opens with the two commands, and docs/landing.md documents the
landing contract as the code enforces it."""

from pathlib import Path

from activations.ingest.docs import contract_markdown

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LANDING = ROOT / "docs" / "landing.md"


def test_readme_opens_with_the_two_commands():
    head = README.read_text().split("\n\n", 3)[:3]
    assert "make demo" in "\n".join(head) and "make test" in "\n".join(head)


def test_docs_document_the_landing_contract_the_code_enforces():
    text = LANDING.read_text()
    documented = text.split("<!-- contract:start -->\n", 1)[1].split("<!-- contract:end -->", 1)[0]
    assert documented.strip() == contract_markdown().strip(), "run `attiva contract` and paste it into docs/landing.md"


def test_dbt_sources_match_the_landing_contract():
    import yaml

    from activations.ingest.contract import SOURCES

    sources = yaml.safe_load((ROOT / "dbt_project/models/staging/_sources.yml").read_text())
    tables = {t["name"]: [c["name"] for c in t["columns"]] for t in sources["sources"][0]["tables"]}
    for source in SOURCES:
        assert tables[source.name][: len(source.columns)] == source.column_names, source.name


def test_engine_and_dbt_share_the_email_placeholders():
    import re

    import yaml

    from activations.destinations.identifiers import PLACEHOLDER_EMAILS, PLACEHOLDER_LOCAL_PART

    project = ROOT / "dbt_project"
    dbt_vars = yaml.safe_load((project / "dbt_project.yml").read_text())["vars"]
    assert set(dbt_vars["identity_placeholder_emails"]) == PLACEHOLDER_EMAILS
    macro = (project / "macros" / "normalize.sql").read_text()
    assert re.escape(PLACEHOLDER_LOCAL_PART) in re.escape(macro) or PLACEHOLDER_LOCAL_PART in macro
