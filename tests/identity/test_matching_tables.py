"""dbt creates the matching tables (on-run-start) with the matching step's own DDL: the copy in
dbt_project/macros/matching.sql must not drift from activations/identity/links.py."""

from __future__ import annotations

import re

import duckdb

from activations import settings
from activations.identity import links


def _columns(ddl: str) -> list[str]:
    return [" ".join(c.split()) for c in ddl.split(",")]


def test_the_macro_ddl_is_the_matching_steps_ddl():
    macro = (settings.dbt_project_dir() / "macros" / "matching.sql").read_text()
    tables = macro.split("macro matching_tables", 1)[1].split("endmacro", 1)[0]
    declared = dict(re.findall(r"'(\w+)': '([^']+)'", tables))
    assert set(declared) == set(links.TABLES)
    for name, ddl in links.TABLES.items():
        assert _columns(declared[name]) == _columns(ddl), name


def test_ensure_tables_leaves_existing_links_alone():
    con = duckdb.connect()
    links.ensure_tables(con)
    con.execute("insert into matching.links (pair_id, status) values ('pair_1', 'review')")
    links.ensure_tables(con)
    assert con.execute("select pair_id from matching.review_queue").fetchall() == [("pair_1",)]
