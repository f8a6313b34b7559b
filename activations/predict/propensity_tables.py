"""The propensity tables in the warehouse (schema `predictions`), and the weekly retraining that fills them.

`predictions.customer_propensity`: one row per customer scored, a probability per model
(null when the customer is outside the model's population: churn for buyers, lead conversion
for leads who have not bought) and the version of the model that gave it.
`predictions.propensity_models`: every training, published or not, with its holdout AUC, the
rule's AUC on the same holdout, Brier score, calibration deciles (JSON) and the gate's reason.

A model that fails its gate, or had too little data, publishes nothing: its column and version
keep the values of the last model that passed, while the other models' columns move on. A customer
no longer in the warehouse (merged, forgotten) leaves the table at the next publication; `attiva
forget` deletes their row at once (schema `predictions` is among the derived schemas it clears).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa

from activations.engine.dialect import create_table
from activations.predict import propensity_features
from activations.predict.propensity import TARGETS, Training, train_all

SCHEMA = "predictions"
SCORES = f"{SCHEMA}.customer_propensity"
MODELS = f"{SCHEMA}.propensity_models"
MODEL_COLUMNS = ("model string, version string, trained_at timestamp, train_cutoff timestamp, "
                 "holdout_cutoff timestamp, horizon_days integer, train_rows bigint, holdout_rows bigint, "
                 "holdout_positives bigint, auc double, rule_auc double, rule string, brier double, "
                 "calibration string, seconds double, published boolean, reason string")


def _version_column(target) -> str:
    return f"{target.name}_model"


def score_columns() -> str:
    probabilities = ", ".join(f"{t.column} double" for t in TARGETS)
    versions = ", ".join(f"{_version_column(t)} string" for t in TARGETS)
    return f"customer_id string, {probabilities}, {versions}, scored_at timestamp"


def ensure_tables(con) -> None:
    """Create the schema and both tables where missing (never touches existing ones)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    create_table(con, SCORES, score_columns())
    create_table(con, MODELS, MODEL_COLUMNS)


def _naive(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def record(con, runs: list[Training]) -> None:
    """Append every training to the models' history."""
    for r in runs:
        con.execute(f"insert into {MODELS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            r.target.name, r.version, _naive(r.trained_at), _naive(r.train_cutoff), _naive(r.holdout_cutoff),
            r.target.horizon_days, r.train_rows, r.holdout_rows, r.holdout_positives, r.auc, r.rule_auc,
            r.target.rule_name, r.brier, json.dumps(r.calibration), round(r.seconds, 3), r.published, r.reason])


def publish(con, runs: list[Training], scored_at: datetime) -> int:
    """Rewrite the scores table with the published models' scores, keeping the previous scores and version of
    every model that was not published; returns the rows written (0 and nothing touched when none passed)."""
    published = [r for r in runs if r.published and r.scores is not None]
    if not published:
        return 0
    columns = []
    for n, r in enumerate(published):
        con.register(f"propensity_new_{n}", pa.table({"customer_id": r.scores["customer_id"].astype(str),
                                                      "probability": r.scores["probability"]}))
    new = {r.target.name: n for n, r in enumerate(published)}
    ids = " union ".join(f"select customer_id from propensity_new_{n}" for n in new.values())
    joins = "".join(f" left join propensity_new_{n} as n{n} on n{n}.customer_id = ids.customer_id"
                    for n in new.values())
    for t in TARGETS:
        if t.name in new:
            n = new[t.name]
            version = next(r.version for r in published if r.target.name == t.name)
            columns += [f"n{n}.probability as {t.column}",
                        f"case when n{n}.probability is not null then '{version}' end as {_version_column(t)}"]
        else:
            columns += [f"old.{t.column}", f"old.{_version_column(t)}"]
    con.execute("begin")
    try:
        con.execute(f"""
            create or replace table {SCORES} as
            with ids as ({ids} union select customer_id from {SCORES}
                         where customer_id in (select customer_id from {propensity_features.PEOPLE}))
            select ids.customer_id, {", ".join(columns)}, cast(? as timestamp) as scored_at
            from ids{joins} left join {SCORES} as old on old.customer_id = ids.customer_id
            order by ids.customer_id""", [_naive(scored_at)])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return con.execute(f"select count(*) from {SCORES}").fetchone()[0]


def retrain(con, now: datetime, **options) -> list[Training]:
    """Train every model on the warehouse as of `now`, record each in the history, publish those that passed."""
    propensity_features.use_warehouse(con)
    return train_and_publish(con, now, **options)


def train_and_publish(con, now: datetime, **options) -> list[Training]:
    """`retrain` on whatever the views point at (the warehouse, or a test's frames)."""
    ensure_tables(con)
    runs = train_all(con, now, **options)
    record(con, runs)
    publish(con, runs, scored_at=now)
    return runs
