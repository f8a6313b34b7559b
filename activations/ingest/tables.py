"""The raw schema: one table per source plus the quarantine, created or widened to match the contract."""

from __future__ import annotations

import duckdb

from activations.ingest.contract import Source
from activations.ingest.sql import ident

SCHEMA = "raw"
QUARANTINE = "raw.quarantine"

SQL_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}

# Lineage on every raw row: which file, which line, which load.
LINEAGE = (("_file", "VARCHAR"), ("_line", "BIGINT"), ("_ingested_at", "TIMESTAMP"))

QUARANTINE_COLUMNS = (
    ("file", "VARCHAR"),
    ("source", "VARCHAR"),
    ("line", "BIGINT"),
    ("field", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("record", "VARCHAR"),
    ("ingested_at", "TIMESTAMP"),
)


def raw_table(source: Source) -> str:
    """The qualified name of a source's raw table, e.g. raw."crm_contacts"."""
    return f"{SCHEMA}.{ident(source.name)}"


def raw_columns(source: Source) -> list[tuple[str, str]]:
    """(name, SQL type) of a source's raw table: the contract columns, then lineage."""
    return [(c.name, SQL_TYPES[c.type]) for c in source.columns] + list(LINEAGE)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and the quarantine table if missing."""
    con.execute(f"create schema if not exists {SCHEMA}")
    _ensure_table(con, QUARANTINE, list(QUARANTINE_COLUMNS))


def ensure_raw_table(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Create the source's raw table, or add the columns a newer contract has (never drops any)."""
    _ensure_table(con, raw_table(source), raw_columns(source))


def _ensure_table(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]) -> None:
    schema, name = table.split(".", 1)
    existing = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, name.strip('"')],
        ).fetchall()
    }
    if not existing:
        body = ", ".join(f"{ident(n)} {t}" for n, t in columns)
        con.execute(f"create table {table} ({body})")
        return
    for column, sql_type in columns:
        if column not in existing:
            con.execute(f"alter table {table} add column {ident(column)} {sql_type}")
