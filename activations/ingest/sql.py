"""Quoting for the SQL that ingestion builds from the contract and from file paths."""

from __future__ import annotations


def literal(value: str) -> str:
    """A SQL string literal holding `value` exactly."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier, so any column name in a file is safe to use."""
    return '"' + name.replace('"', '""') + '"'
