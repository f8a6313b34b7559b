"""Which pairs of person records get scored: records sharing at least one blocking key.

Each key combines two fields (or a field and a prefix of another), so together the keys
tolerate a typo in any one field: every field is left out by several keys. A key value
shared by more than `max_block_size` records (a common name in a big city, a family's
shared phone that escaped the guards) is dropped for that key only: such a block says
little and costs the square of its size; its true pairs still meet on the other keys.
That bounds the cost at 1M records whatever the name distribution.
"""

from __future__ import annotations

import duckdb
from splink import block_on

_DOB = "CAST(birth_date AS VARCHAR)"

# Key name -> the SQL parts it is made of (all must be non-null for the key to exist).
BLOCKING_KEYS: dict[str, tuple[str, ...]] = {
    # Unordered, so a first/last name swap lands in the same block as the exact name.
    "names": ("least(first_name, last_name)", "greatest(first_name, last_name)"),
    "last_name_birth_date": ("last_name", _DOB),
    "first_name_birth_date": ("first_name", _DOB),
    "birth_date_postcode": (_DOB, "postcode"),
    "birth_date_city": (_DOB, "city"),
    "last_name_postcode": ("last_name", "postcode"),
    "first_name_postcode": ("first_name", "postcode"),
    "address_postcode": ("address", "postcode"),
    # The street without its number (left out, respaced or rewritten).
    "street_postcode": ("address_street", "postcode"),
    "address_city": ("address", "city"),
    "first_name_last_name3": ("first_name", "substr(last_name, 1, 3)"),
    "last_name_first_name3": ("last_name", "substr(first_name, 1, 3)"),
    "birth_date_first_name1": (_DOB, "substr(first_name, 1, 1)"),
    "birth_date_last_name1": (_DOB, "substr(last_name, 1, 1)"),
    # The street number (and the start of the street) with the birth date, and with the year.
    "birth_date_address3": (_DOB, "substr(address, 1, 3)"),
    "address_birth_year": ("address", "substr(" + _DOB + ", 1, 4)"),
    "email": ("email",),
    "phone": ("phone",),
    "email_local_part": ("nullif(regexp_extract(email, '^[^@]+'), '')",),
}


def _key_sql(parts: tuple[str, ...]) -> str:
    present = " AND ".join(f"({part}) IS NOT NULL" for part in parts)
    return f"CASE WHEN {present} THEN concat_ws('|', {', '.join(parts)}) END"


def add_blocking_keys(con: duckdb.DuckDBPyConnection, table: str, max_block_size: int) -> None:
    """Add a bk_<name> column per blocking key to `table`, null where its block is too big."""
    keys = ",\n".join(f"{_key_sql(parts)} AS k_{name}" for name, parts in BLOCKING_KEYS.items())
    capped = ",\n".join(
        f"CASE WHEN count(k_{name}) OVER (PARTITION BY k_{name}) <= {int(max_block_size)} "
        f"THEN k_{name} END AS bk_{name}"
        for name in BLOCKING_KEYS
    )
    raw = ", ".join(f"k_{name}" for name in BLOCKING_KEYS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT * EXCLUDE ({raw}) FROM (
            SELECT *, {capped} FROM (SELECT *, {keys} FROM {table})
        )
        """
    )


def blocking_rules() -> list:
    """The Splink blocking rules: one equi-join per blocking key column."""
    return [block_on(f"bk_{name}") for name in BLOCKING_KEYS]
