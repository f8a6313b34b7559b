"""The DDL the dbt project copies from Python steps (macros/*.sql, created empty on-run-start), read back
so tests can hold the copy to the original."""

from __future__ import annotations

import re

from activations import settings


def columns(ddl: str) -> list[str]:
    """`a string, b  double` -> ["a string", "b double"]."""
    return [" ".join(c.split()) for c in ddl.split(",")]


def declared(macro_file: str, macro: str) -> dict[str, list[str]]:
    """table -> columns, as the dict a `{% macro <macro>() %}` in macros/<macro_file> returns."""
    text = (settings.dbt_project_dir() / "macros" / macro_file).read_text()
    body = text.split(f"macro {macro}", 1)[1].split("endmacro", 1)[0]
    return {name: columns(ddl) for name, ddl in re.findall(r"'(\w+)': '([^']+)'", body)}
