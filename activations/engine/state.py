"""The engine's tables in the warehouse (schema `activation`), created on first use.

Portable DDL (no constraints, plain types; Spark stores them as Parquet) so the same state can live on any warehouse.
"""

from __future__ import annotations

from activations.engine.dialect import add_missing_columns, create_table

TABLES = {
    # What each destination confirmed holding, per sync: the only basis for the next diff.
    # `identifiers` keeps the prepared (normalized, hashed) identifiers as JSON: removal needs them
    # after the row has left the audience. `run_id`: the run that last confirmed the row.
    "sync_snapshots": """
        sync_name string, row_key string, row_hash string, destination_id string, identifiers string,
        confirmed_at timestamp, run_id string""",
    # A reviewable plan: one row per key to add, update or remove.
    "sync_plan_rows": """
        plan_id string, sync_name string, operation string, row_key string, row_hash string,
        destination_id string, will_send boolean""",
    "sync_plans": """
        plan_id string, sync_name string, mode string, planned_at timestamp, audience_rows bigint,
        eligible_rows bigint, adds bigint, updates bigint, removes bigint, unchanged bigint, snapshot_rows bigint""",
    # Append-only while a run sends: every update and removal the destination confirmed, written as
    # it confirms. Folded into the snapshot when the run ends, or by the next run after a crash.
    # (Confirmed adds go straight into the snapshot: their keys are not in it.)
    "sync_confirmations": """
        run_id string, sync_name string, operation string, row_key string, row_hash string,
        destination_id string, identifiers string, confirmed_at timestamp""",
    # Append-only while a run sends: rows set aside (invalid identifiers) or refused by the destination.
    "sync_row_errors": """
        run_id string, sync_name string, operation string, row_key string, kind string, reason string,
        http_status integer, tries integer, seen_at timestamp""",
    # Rows not delivered, per sync: why, the last HTTP status, and how many runs tried them.
    # The next run plans them again (they are not in the snapshot), so they are retried by themselves.
    "sync_rejects": """
        sync_name string, row_key string, operation string, kind string, reason string, http_status integer,
        attempts integer, first_seen_at timestamp, last_seen_at timestamp, run_id string""",
    # `attiva forget` (activations/erasure.py): one row per request, no personal data, only a hash of who
    # was named; one row per destination instance the request must reach, until it confirmed the deletion.
    "erasure_requests": "request_id string, requested_at timestamp, subject_sha256 string, customers integer",
    "erasure_destinations": """
        request_id string, destination string, status string, records integer, attempts integer,
        last_error string, last_attempt_at timestamp, confirmed_at timestamp""",
    # What a destination needs to find the person (its prepared identifiers, its own record id), kept
    # only until that destination confirmed the deletion, then deleted.
    "erasure_work": "request_id string, destination string, row_key string, destination_id string, identifiers string",
    # SHA-256 of every identifier value of an erased person (lower-cased, trimmed): a plan never sends a
    # row whose key or identifiers hash to one of these, whatever lands later.
    "erased_hashes": "value_sha256 string, request_id string",
    # One row per run: what was planned, sent, confirmed, rejected and set aside, and how it ended;
    # `resent`: rows carried again by retried requests; `paused_seconds`: rate-limit pauses in all;
    # then what the destination itself reported, where it reports it (destinations/base.py UploadReport).
    "sync_runs": """
        run_id string, sync_name string, destination string, mode string, plan_id string, status string,
        started_at timestamp, finished_at timestamp, duration_seconds double, audience_rows bigint,
        planned bigint, sent bigint, confirmed bigint, rejected bigint, invalid bigint, error string,
        reported_received bigint, reported_invalid bigint, match_rate_low double, match_rate_high double,
        resent bigint, paused_seconds double""",
}

# How a run that went through its plan ended (activation.sync_runs.status): everything delivered; some rows
# not delivered for reasons that may pass (retries spent: exit 1); every row delivered but those the
# destination will never take as they are (invalid identifiers, rows it refused: exit 4). A run that did
# not go through its plan is `refused`, `stopped`, `failed`, `interrupted` or, killed, `crashed`.
SUCCESS, PARTIAL, DELIVERED_EXCEPT_INVALID = "success", "partial", "delivered_except_invalid"
DELIVERED = (SUCCESS, PARTIAL, DELIVERED_EXCEPT_INVALID)

# Columns added after a table first shipped: warehouses built by an older version gain them.
ADDED_COLUMNS = {
    "sync_snapshots": {"identifiers": "string", "run_id": "string"},
    "sync_runs": {"reported_received": "bigint", "reported_invalid": "bigint", "match_rate_low": "double",
                  "match_rate_high": "double", "resent": "bigint", "paused_seconds": "double"},
}


def ensure_state(con) -> None:
    """Create schema `activation` and the engine's tables if they are missing."""
    con.execute("create schema if not exists activation")
    for name, columns in TABLES.items():
        create_table(con, f"activation.{name}", columns)
    for name, added in ADDED_COLUMNS.items():
        add_missing_columns(con, f"activation.{name}", added)
