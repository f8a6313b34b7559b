"""What the docs promise: the README opens with the two commands, and docs/landing.md documents the
landing contract as the code enforces it."""

import re
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


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower-cased, punctuation dropped, spaces as '-', repeats numbered."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", page.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
        if seen[slug]:
            seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def test_every_relative_link_in_the_docs_resolves():
    """README.md and docs/**/*.md: each relative link names a file that exists, and an anchor its headings make."""
    broken = []
    for page in _pages():
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not resolved.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{where} (no such heading)")
            elif anchor and resolved.is_dir():
                broken.append(f"{where} (an anchor on a folder)")
    assert not broken, "broken links:\n" + "\n".join(broken)
