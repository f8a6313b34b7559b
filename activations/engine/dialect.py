"""What the engine words differently per warehouse (like dbt's adapter.dispatch).

Everything else the engine runs is portable SQL. DuckDB deletes, updates and commits in SQL;
a warehouse that cannot (Spark's Parquet tables, activations/spark_warehouse.py) offers the same
operations as methods of its connection, and these functions call them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def warehouse_kind(con) -> str:
    """`duckdb`, `spark`, ... from the connection."""
    declared = getattr(con, "warehouse_kind", None)
    if declared:
        return declared
    module = type(con).__module__.split(".")[0].lstrip("_")
    return "duckdb" if module.startswith("duckdb") else "default"


def row_hash(con, columns: list[str]) -> str:
    """A change-detecting hash over `columns` as a string expression; nulls and boundaries are explicit.

    DuckDB's and Spark's native 64-bit hashes are 4-5x cheaper than md5 on 10M rows. If an upgrade
    changes them, every row looks changed once and is resent: idempotent writes make that safe.
    """
    kind = warehouse_kind(con)
    if kind == "duckdb":
        return f"cast(hash({', '.join(columns)}) as string)"
    if kind == "spark":
        return f"cast(xxhash64({', '.join(columns)}) as string)"
    parts = " || '\x1f' || ".join(f"coalesce(cast({c} as string), '\x1e')" for c in columns)
    return f"md5({parts})"


def sha256_hex(con, expression: str) -> str:
    """SHA-256 of a string expression as 64 lower-case hex characters (erased people are matched by it)."""
    if warehouse_kind(con) == "spark":
        return f"sha2({expression}, 256)"
    return f"sha256({expression})"


@contextmanager
def transaction(con) -> Iterator[None]:
    """All or nothing where the warehouse has transactions; where it has none, the caller's steps
    must be safe to repeat after a crash."""
    if hasattr(con, "transaction"):
        with con.transaction():
            yield
        return
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def delete(con, table: str, where: str, params: Sequence[Any] = ()) -> None:
    """`delete from table where ...`."""
    if hasattr(con, "delete_where"):
        con.delete_where(table, where, params)
    else:
        con.execute(f"delete from {table} where {where}", list(params))


def update(con, table: str, values: dict[str, Any], where: str, params: Sequence[Any] = ()) -> None:
    """`update table set column = value, ... where ...`, the values bound, never pasted into the SQL."""
    if hasattr(con, "update_where"):
        con.update_where(table, values, where, params)
    else:
        assignments = ", ".join(f"{column} = ?" for column in values)
        con.execute(f"update {table} set {assignments} where {where}", [*values.values(), *params])


def create_table(con, name: str, columns: str) -> None:
    """`create table if not exists` with the warehouse's own storage clause."""
    if hasattr(con, "create_table"):
        con.create_table(name, columns)
    else:
        con.execute(f"create table if not exists {name} ({columns})")


def add_missing_columns(con, table: str, columns: dict[str, str]) -> None:
    """Columns added after `table` (schema.name) first shipped: a warehouse built by an older version gains them."""
    schema, name = table.split(".")
    present = column_names(con, schema, name)
    for column, column_type in columns.items():
        if column not in present:
            con.execute(f"alter table {table} add column {column} {column_type}")


def has_table(con, schema: str, table: str) -> bool:
    """Whether the table exists: readers on a read-only connection must not create it to find out."""
    if hasattr(con, "has_table"):
        return con.has_table(schema, table)
    # fetchall, not fetchone: DuckDB keeps a half-read result open and refuses the connection's next query
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = ?", [schema, table]).fetchall()[0][0])


def column_names(con, schema: str, table: str) -> set[str]:
    if hasattr(con, "table_columns"):
        return {name for name, _ in con.table_columns(schema, table)}
    return {row[0] for row in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table]).fetchall()}
