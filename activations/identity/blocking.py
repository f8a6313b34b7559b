"""Which pairs of person records get scored: records sharing at least one blocking key.

Each key combines two fields (or a field and a prefix of another), so together the keys
tolerate a typo in any one field: every field is left out by several keys. A key value
shared by more than `max_block_size` records (a common name in a big city, a family's
shared phone that escaped the guards) is not used for that key: such a block says
little and costs the square of its size; its true pairs still meet on the other keys.
That bounds the cost at 1M records whatever the name distribution.

The pairs are listed here (`candidate_pairs`) and handed to Splink to score, rather than
given to Splink as blocking rules: one join over all keys lists each pair once, and an
incremental run lists only the pairs with a new record, the same way as a full one.
"""

from __future__ import annotations

import duckdb

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


def _key_sql(name: str, parts: tuple[str, ...]) -> str:
    # A key is kept as a 128-bit hash of its name and parts, joined and carried faster than the
    # text. Not DuckDB's hash(): two strings that differ in two places eight characters apart can
    # share it ('1992-12-24|80134' and '1995-12-24|50134'), and two blocks that share a key can
    # grow past max_block_size together.
    present = " AND ".join(f"({part}) IS NOT NULL" for part in parts)
    return f"CASE WHEN {present} THEN md5_number(concat_ws('|', '{name}', {', '.join(parts)})) END"


def candidate_pairs(con: duckdb.DuckDBPyConnection, table: str, pairs: str, max_block_size: int,
                    new_ids: str | None = None) -> int:
    """Create `pairs` (match_key, join_key_l < join_key_r: record numbers, as Splink scores them):
    each pair of records of `table` (its columns, and `record_number`) sharing a key whose block
    has at most `max_block_size` records, once; with `new_ids` (a table of record_number), only
    the pairs with a new record. Returns how many."""
    keys = ", ".join(f"{_key_sql(name, parts)} AS bk_{name}" for name, parts in BLOCKING_KEYS.items())
    columns = ", ".join(f"bk_{name}" for name in BLOCKING_KEYS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __block_keys AS
        SELECT record_number, v FROM (UNPIVOT (SELECT record_number, {keys} FROM {table})
                                      ON {columns} INTO NAME k VALUE v)""")
    # The block sizes are counted over every record, new or not.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __blocks AS
        SELECT * FROM __block_keys SEMI JOIN (
            SELECT v FROM __block_keys GROUP BY v HAVING count(*) BETWEEN 2 AND {int(max_block_size)}) USING (v)""")
    if new_ids is None:
        left, ordered = "__blocks", "l.record_number < r.record_number"
    else:
        left = f"(SELECT * FROM __blocks WHERE record_number IN (SELECT record_number FROM {new_ids}))"
        ordered = "l.record_number <> r.record_number"
    # A pair is listed once however many keys it shares.
    con.execute(f"""
        CREATE OR REPLACE TABLE {pairs} AS
        SELECT DISTINCT '0' AS match_key, least(l.record_number, r.record_number) AS join_key_l,
               greatest(l.record_number, r.record_number) AS join_key_r
        FROM {left} AS l JOIN __blocks AS r ON l.v = r.v AND {ordered}""")
    con.execute("DROP TABLE __blocks; DROP TABLE __block_keys")
    return con.execute(f"SELECT count(*) FROM {pairs}").fetchall()[0][0]
