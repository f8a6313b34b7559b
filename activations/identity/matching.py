"""The matching step: score person records the rules may leave apart, and record the links.

Runs between the identity graph's nodes and the rest of the identity models (`attiva build`,
Dagster's `matching/links` asset): it reads the latest version of every CRM contact and shop
account from staging, sets aside identifiers the nodes found shared (the veto: a shared email
or phone never supports a match; placeholders were already nulled by staging), scores the records that are new
or changed since the last run against all records (activations/identity/linkage.py), and writes
the pairs at or above the review threshold to `matching.links` (links.py). The identity models
then turn merged and accepted links into observations (int_identity__observations_matched).

A reviewer's decision (accepted, rejected) is kept across runs: a new score changes the pair's
weight, never its decided status.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from activations.engine.dialect import column_names, delete, has_table, row_hash, transaction
from activations.identity import linkage, links
from activations.identity.linkage import LinkageSettings, score_pairs, train_and_score
from activations.settings import match_thresholds

RECORD_FIELDS = ("first_name", "last_name", "birth_date", "address", "city", "postcode", "phone", "email")
# Guest orders numbered within their checkout email, those shipped to an address first (the first is 1); a
# refund is a second row of an order. The address is tested after the ranking, on guest orders only: as a
# filter beside the guest one, the staging view cleaned every order's address first (5 of 8 s at 1M).
GUEST_CHECKOUTS = (
    "(select o.*, row_number() over (partition by coalesce(o.email, o.order_id) "
    "order by case when o.shipping_address is null then 1 else 0 end, o.ordered_at, o.order_id, "
    "o._ingested_at desc, o._line desc) as checkout_rank "
    "from staging.stg_shop__orders as o where o.shop_customer_id is null)"
)
# Where each kind of record lives in staging, its node prefix (as the identity graph names it), the
# staging column behind each field where the name differs, and which rows are the records (from, where).
SOURCES = {
    "crm": ("stg_crm__contacts", "crm_contact_id", "contact_id", {},
            ("staging.stg_crm__contacts", "r.is_latest_version")),
    "shop": ("stg_shop__customers", "shop_customer_id", "shop_customer_id", {"postcode": "postal_code"},
             ("staging.stg_shop__customers", "r.is_latest_version")),
    # A guest checkout's shipping name and address. One record per checkout email, its first order (an
    # email joins its later orders by rule; the first stays the same, so the record id is stable), and
    # one per order without an email. Store sales ship nothing and are left out.
    "guest": ("stg_shop__orders", "guest_order_id", "order_id",
              {"first_name": "shipping_first_name", "last_name": "shipping_last_name", "address": "shipping_address",
               "city": "shipping_city", "postcode": "shipping_postal_code"},
              (GUEST_CHECKOUTS, "r.checkout_rank = 1 and r.shipping_address is not null")),
}
# The identity graph's nodes, built before matching from the records alone: which identifiers are shared.
SHARED_NODES = ("intermediate", "int_identity__nodes")
SHARED_FIELDS = ("email", "phone")


def settings_from_env() -> LinkageSettings:
    """The model's defaults, with the thresholds set in the environment (settings.match_thresholds)."""
    return LinkageSettings(**match_thresholds())


@dataclass
class MatchingResult:
    records: int = 0
    new_records: int = 0
    pairs_scored: int = 0
    links_written: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)  # status -> links in the table after the run
    scored: pa.Table | None = None  # what this run scored (record_id_l, record_id_r, match_weight, ...)

    def __str__(self) -> str:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())) or "no links"
        return (f"matching: {self.new_records:,} new or changed of {self.records:,} records, "
                f"{self.pairs_scored:,} pairs scored, {self.links_written:,} links written in {self.seconds:.1f}s "
                f"({statuses})")


def _records_query(con) -> str:
    """The latest version of every person record in staging, shared identifiers nulled (see read_records)."""
    parts = []
    for source, (table, prefix, key, renamed, (rows, where)) in SOURCES.items():
        if not has_table(con, "staging", table):
            continue
        available = column_names(con, "staging", table)
        if not set(renamed.values()) <= set(available):
            continue  # a warehouse built before the source had these columns (orders' shipping details)
        columns = ", ".join(_field(name, renamed.get(name, name), available) for name in RECORD_FIELDS)
        parts.append(f"select '{prefix}:' || r.{key} as record_id, '{source}' as source, {columns} "
                     f"from {rows} as r where {where}")
    if not parts:
        raise RuntimeError("no person records in staging (stg_crm__contacts, stg_shop__customers): build staging first")
    if not has_table(con, *SHARED_NODES):
        raise RuntimeError("no identity graph nodes (intermediate.int_identity__nodes): "
                           "build them before matching (activations/build.py BEFORE_MATCHING)")
    fields = ", ".join(
        f"case when {f} in (select substr(node, {len(f) + 2}) from {'.'.join(SHARED_NODES)} "
        f"where is_shared and node like '{f}:%') then null else {f} end as {f}" if f in SHARED_FIELDS else f
        for f in ("record_id", "source", *RECORD_FIELDS))
    return f"with records as ({' union all '.join(parts)}) select {fields} from records"


def _field(name: str, column: str, available: list[str]) -> str:
    """One record field read from a staging row (r); null when the table lacks its column."""
    if column not in available:
        return f"cast(null as string) as {name}"
    if name == "address" and "company" in available:
        # A business contact's address is the office's: colleagues share it, and now and then a
        # first name (at 20k generated people, 6 false merges in 11 were such colleagues).
        return f"case when r.company is null then cast(r.{column} as string) end as {name}"
    return f"cast(r.{column} as string) as {name}"


def _fingerprinted_query(con) -> str:
    return f"select *, {row_hash(con, list(RECORD_FIELDS))} as fingerprint from ({_records_query(con)}) as records"


def read_records(con) -> pa.Table:
    """The records to match, each with a fingerprint of its fields after the veto.

    The veto: an email or phone the identity graph marks shared (int_identity__nodes, built in
    this build before matching, from the records alone, never from matching's own links) is set
    to None, so it never supports a match. Placeholders never get here: staging nulls them.
    """
    return _arrow(con, f"{_fingerprinted_query(con)} order by record_id")


def _arrow(con, query: str) -> pa.Table:
    """A query's rows as Arrow, on DuckDB or the Spark warehouse."""
    return con.sql(query).to_arrow_reader(1_000_000).read_all()


def changed_records(con) -> tuple[int, list[str]] | None:
    """(records, the ids of those new or changed since they were last scored), compared in the warehouse in
    one query, so a run with nothing new reads no record (at 1M customers, reading every record and comparing
    fingerprints in Python took 11 s); None when no record was ever scored (score all)."""
    if not con.execute(f"select count(*) from {links.SCHEMA}.records").fetchall()[0][0]:
        return None
    total, ids = con.execute(
        "select count(*), list(r.record_id) filter (where p.fingerprint is null or p.fingerprint <> r.fingerprint) "
        f"from ({_fingerprinted_query(con)}) as r left join {links.SCHEMA}.records as p on p.record_id = r.record_id"
    ).fetchall()[0]
    return int(total), sorted(ids or [])


def status_sql(settings: LinkageSettings) -> str:
    """SQL of a row of score_pairs' status: merged when it merges (LinkageSettings.merges: at or above the match
    threshold, corroborated by more than names and place), review when it is at or above the review threshold
    otherwise and not contradicted (.reviews: birth dates apart), null otherwise."""
    return (f"case when match_probability >= {float(settings.match_threshold)!r} and corroborated then '{links.MERGED}' "
            f"when match_probability >= {float(settings.review_threshold)!r} and not coalesce(contradicted, false) "
            f"then '{links.REVIEW}' end")


LINK_COLUMNS = tuple(column.split()[0] for column in links.TABLES["links"].split(", "))


def merge_links(con, scored: str, rescored: str | None, settings: LinkageSettings, now: datetime) -> pa.Table:
    """The new rows of the links touched by this run, merged in the warehouse: `scored` (a view of score_pairs'
    rows) with the links of the records in `rescored` (a view of record_id; None: every link, a full run).

    A decided pair keeps its status; an undecided pair takes its new status, or `dropped` when it no longer
    reaches the band or is no longer a candidate pair. (In Python, pair by pair, this took 10 s at 1M customers.)
    """
    touched = "" if rescored is None else (f"where record_id_l in (select record_id from {rescored}) "
                                           f"or record_id_r in (select record_id from {rescored})")
    decided = ", ".join(f"'{status}'" for status in links.DECIDED)
    new_status = (f"case when o.status in ({decided}) then o.status "
                  f"when s.pair_id is null then '{links.DROPPED}' else coalesce(s.status, '{links.DROPPED}') end")
    return con.sql(f"""
        with s as (
            select {links.pair_id_sql('l', 'r')} as pair_id, * from (
                select least(record_id_l, record_id_r) as l, greatest(record_id_l, record_id_r) as r,
                       cast(match_weight as double) as match_weight,
                       cast(match_probability as double) as match_probability, evidence,
                       {status_sql(settings)} as status
                from {scored})),
        o as (select {', '.join(LINK_COLUMNS)} from {links.SCHEMA}.links {touched}),
        merged as (
            select coalesce(s.pair_id, o.pair_id) as pair_id, coalesce(s.l, o.record_id_l) as record_id_l,
                   coalesce(s.r, o.record_id_r) as record_id_r,
                   case when s.pair_id is null then o.match_weight else s.match_weight end as match_weight,
                   case when s.pair_id is null then o.match_probability else s.match_probability end
                       as match_probability,
                   case when s.pair_id is null then o.evidence else s.evidence end as evidence,
                   {new_status} as status,
                   case when s.pair_id is null then o.scored_at else cast(? as timestamp) end as scored_at,
                   o.decided_at, o.updated_at, o.status as old_status, s.pair_id is not null as is_scored,
                   s.status is not null as in_band
            from s full outer join o on o.pair_id = s.pair_id)
        select {', '.join(c for c in LINK_COLUMNS if c != 'updated_at')},
               case when old_status = status then updated_at else cast(? as timestamp) end as updated_at
        from merged
        -- a pair scored below the band that was never linked, and a link neither scored nor changed, are left
        where (is_scored and (in_band or old_status is not null))
           or (not is_scored and old_status not in ({decided}, '{links.DROPPED}'))
    """, params=[now, now]).to_arrow_table()


def _register(con, table: pa.Table) -> str:
    view = f"_attiva_matching_{uuid.uuid4().hex[:8]}"
    con.register(view, table)
    return view


def _replace(con, table: str, key: str, rows: pa.Table) -> None:
    """Delete the rows of `table` whose `key` is in `rows`, then insert `rows` (same columns)."""
    if not rows.num_rows:
        return
    view = _register(con, rows)
    try:
        delete(con, table, f"{key} in (select {key} from {view})")
        con.execute(f"insert into {table} ({', '.join(rows.column_names)}) "
                    f"select {', '.join(rows.column_names)} from {view}")
    finally:
        con.unregister(view)


def _stored_model(con) -> dict | None:
    """The model the last full run trained, if any."""
    found = con.execute(f"select model from {links.SCHEMA}.models order by trained_at desc limit 1").fetchall()
    return json.loads(found[0][0]) if found else None


def _store_model(con, model: dict, records: int, now: datetime) -> None:
    delete(con, f"{links.SCHEMA}.models", "trained_at <= ?", [now])
    con.execute(f"insert into {links.SCHEMA}.models values (?, ?, ?)", [now, records, json.dumps(model)])


def run_matching(con, *, now: datetime, settings: LinkageSettings | None = None,
                 rescore_all: bool = False) -> MatchingResult:
    """Score the records new or changed since the last run (all of them with `rescore_all` or on the first
    run) against every record, and write the links; returns what it did.

    A full run trains the model on all records and keeps it (matching.models); an incremental run
    scores with the kept model, so its cost follows the new records, not the whole base.
    """
    settings = settings or settings_from_env()
    started = time.monotonic()
    links.ensure_tables(con)
    kept = None if rescore_all or settings.model else _stored_model(con)
    if kept is not None and not linkage.is_current(kept):
        # Kept by an older version: its comparisons or its training lack what this one adds. Train and
        # score everyone again.
        logging.getLogger(__name__).warning("matching: the kept model predates this version's comparisons "
                                            "or training; "
                                            "training a new one and scoring every record again")
        rescore_all, kept = True, None
    changed = None if rescore_all else changed_records(con)
    if changed is not None and not changed[1]:  # nothing new or changed since the last run: nothing to read or score
        return _log_run(con, MatchingResult(records=changed[0]), now, started)
    new_ids = None if changed is None else changed[1]
    records = read_records(con)
    result = MatchingResult(records=records.num_rows, new_records=records.num_rows if new_ids is None else len(new_ids))
    if records.num_rows == 0:  # no person record in staging yet: nothing to train on
        scored = None
    else:
        people = records.drop_columns(["fingerprint"])
        model = settings.model or (None if new_ids is None else kept)
        if model is None:  # a full run: train on everyone, keep it for the next runs
            model, scored = train_and_score(people, settings=settings)
            _store_model(con, model, records.num_rows, now)
        else:
            scored = score_pairs(people, new_record_ids=new_ids, settings=replace(settings, model=model))
    if scored is not None:
        result.scored, result.pairs_scored = scored, scored.num_rows
        scored_view = _register(con, scored)
        rescored = None if new_ids is None else _register(con, pa.table({"record_id": pa.array(new_ids, pa.string())}))
        try:
            rows = merge_links(con, scored_view, rescored, settings, now)
        finally:
            for view in (scored_view, rescored):
                if view:
                    con.unregister(view)
        result.links_written = rows.num_rows
        fresh = records.select(["record_id", "fingerprint"])
        if new_ids is not None:
            fresh = fresh.filter(pc.is_in(fresh.column("record_id"), value_set=pa.array(new_ids, pa.string())))
        fresh = fresh.append_column("scored_at", pa.array([now] * fresh.num_rows, pa.timestamp("us")))
        with transaction(con):
            _replace(con, f"{links.SCHEMA}.links", "pair_id", rows)
            _replace(con, f"{links.SCHEMA}.records", "record_id", fresh)
    return _log_run(con, result, now, started)


def _log_run(con, result: MatchingResult, now: datetime, started: float) -> MatchingResult:
    """Log the run in matching.runs and count the links by status; returns `result`."""
    result.seconds = time.monotonic() - started
    con.execute(f"insert into {links.SCHEMA}.runs values (?, ?, ?, ?, ?, ?, ?, ?)",
                [uuid.uuid4().hex, now, now + timedelta(seconds=result.seconds), result.records, result.new_records, result.pairs_scored,
                 result.links_written, result.seconds])
    result.statuses = dict(con.execute(f"select status, count(*) from {links.SCHEMA}.links group by status").fetchall())
    return result
