"""The engine's tables in the warehouse (schema `activation`), created on first use.

Portable DDL (no constraints, plain types) so the same state can live on any warehouse.
"""

from __future__ import annotations

TABLES = {
    # What each destination confirmed holding, per sync: the only basis for the next diff.
    "sync_snapshots": """
        sync_name string, row_key string, row_hash string, destination_id string, confirmed_at timestamp""",
    # A reviewable plan: one row per key to add, update or remove.
    "sync_plan_rows": """
        plan_id string, sync_name string, operation string, row_key string, row_hash string,
        destination_id string, will_send boolean""",
    "sync_plans": """
        plan_id string, sync_name string, mode string, planned_at timestamp, audience_rows bigint,
        eligible_rows bigint, adds bigint, updates bigint, removes bigint, unchanged bigint, snapshot_rows bigint""",
}


def ensure_state(con) -> None:
    """Create schema `activation` and the engine's tables if they are missing."""
    con.execute("create schema if not exists activation")
    for name, columns in TABLES.items():
        con.execute(f"create table if not exists activation.{name} ({columns})")
