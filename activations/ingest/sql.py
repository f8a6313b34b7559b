"""Quoting for the SQL that ingestion builds from the contract and from file paths."""

from __future__ import annotations

import re


def literal(value: str) -> str:
    """A SQL string literal holding `value` exactly."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier, so any column name in a file is safe to use."""
    return '"' + name.replace('"', '""') + '"'


def exact_path(path: object) -> str:
    """A SQL literal naming exactly the file at `path` in DuckDB's readers.

    The readers take a path as a glob: a file named `*.csv` would read all its siblings and
    `c[1].csv` would read `c1.csv`. Each pattern character in brackets matches only itself.
    """
    return literal(re.sub(r"([*?\[])", r"[\1]", str(path)))
