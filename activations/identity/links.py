"""The tables probabilistic matching keeps in the warehouse (schema `matching`).

`matching.links`: every pair of records scored at or above the review threshold, with its
match weight, probability and evidence, and a status:
  merged    scored at or above the match threshold: the identity graph links the two;
  review    in the band between the thresholds: waits for a reviewer, links nobody;
  accepted  a reviewer said they are one person: linked, whatever later scores say;
  rejected  a reviewer said they are not: never linked, whatever later scores say;
  dropped   was merged or in review, then a record changed and the pair scored below the band.
`matching.review_queue` is the view of the pairs waiting (status review).
`matching.records` remembers each record's fingerprint when it was last scored, so a run scores
only records that are new or changed; `matching.runs` logs what each run scored;
`matching.models` keeps the model trained by the last full run, which incremental runs reuse.

dbt creates the same tables empty when missing (macros/matching.sql, on-run-start), so a build
on a warehouse where matching never ran still reads an (empty) links table.
"""

from __future__ import annotations

from activations.engine.dialect import create_table

SCHEMA = "matching"
MERGED, REVIEW, ACCEPTED, REJECTED, DROPPED = "merged", "review", "accepted", "rejected", "dropped"
DECIDED = (ACCEPTED, REJECTED)
LINKING = (MERGED, ACCEPTED)

TABLES = {
    "links": "pair_id string, record_id_l string, record_id_r string, match_weight double, "
             "match_probability double, evidence string, status string, scored_at timestamp, "
             "decided_at timestamp, updated_at timestamp",
    "records": "record_id string, fingerprint string, scored_at timestamp",
    "runs": "run_id string, started_at timestamp, finished_at timestamp, records bigint, new_records bigint, "
            "pairs_scored bigint, links_written bigint, seconds double",
    "models": "trained_at timestamp, records bigint, model string",
}
REVIEW_QUEUE = (f"select pair_id, record_id_l, record_id_r, match_weight, match_probability, evidence, scored_at "
                f"from {SCHEMA}.links where status = '{REVIEW}'")


def ensure_tables(con) -> None:
    """Create the schema, its tables and the review queue view where missing (never touches existing ones)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for name, columns in TABLES.items():
        create_table(con, f"{SCHEMA}.{name}", columns)
    con.execute(f"create view if not exists {SCHEMA}.review_queue as {REVIEW_QUEUE}")


def pair_id_sql(record_id_l: str, record_id_r: str) -> str:
    """SQL for the pair's stable id, the same in every run: what a reviewer types to accept or reject it
    ('pair_' and the first 12 hex digits of the SHA-256 of 'record_id_l|record_id_r')."""
    return f"'pair_' || left(sha256({record_id_l} || '|' || {record_id_r}), 12)"
