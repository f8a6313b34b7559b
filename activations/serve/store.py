"""The serving store: a read-optimized snapshot of the warehouse for the personalization API.

Layout under the serving folder (ATTIVA_SERVING, default ATTIVA_DATA/serving):

    <version>/store.sqlite   one immutable snapshot: identifiers -> customer, one JSON
                             document per customer (public traits, audiences, recommendations,
                             promotion on the favourite), the audience names
    current                  the name of the published version, replaced atomically (os.replace)
    forgotten.txt            customer ids `attiva forget` erased; no snapshot is published with them
    .lock                    serializes publishing (a build and a forget may race)

Why SQLite and not the DuckDB warehouse or Parquet: a profile lookup is two primary-key reads
(tens of microseconds), a snapshot is one file that readers open with `immutable=1` (no locks,
so serving never blocks the warehouse writer and the writer never blocks serving), and the
documents are denormalized at build time by DuckDB, so a request does no joins.

A snapshot is built in a hidden folder and renamed into place before `current` points at it,
so a reader never sees a half-built one. Readers check `current` at most every second and
switch without a restart; the previous versions are kept a little while for readers that still
hold them open (on POSIX an unlinked open file stays readable anyway).

Forget: `attiva forget` calls `forget_from_serving`, which adds the ids to `forgotten.txt`,
copies the current snapshot without the person (secure_delete zeroes the freed pages), publishes
the copy and deletes every older version, so their data is gone from disk at once rather than at
the next build. A build applies `forgotten.txt` just before it publishes, so a build that read
the warehouse before the forget cannot bring the person back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from activations import settings
from activations.warehouse import has_table, open_when_free

STORE_FILE = "store.sqlite"
POINTER = "current"
FORGOTTEN = "forgotten.txt"
KEEP_PREVIOUS = 2
TOP_RECOMMENDATIONS = 10
STALE_BUILD_SECONDS = 6 * 3600

# The customer columns the API may ever return ("declared public"); each key narrows them further.
PUBLIC_TRAITS = (
    "customer_id", "email", "phone", "first_name", "last_name", "city", "country", "timezone", "is_b2b",
    "company", "lifecycle_stage", "lead_score", "rfm_segment", "churn_risk", "orders_count", "favourite_category",
    "favourite_product_id", "email_marketable", "consent_email", "consent_sms", "consent_ads", "consent_profiling",
    "churn_probability", "purchase_probability_30d", "lead_conversion_probability", "expected_value_365d",
    "probability_alive",
)
# Predicted traits: the table the weekly models publish them in (docs/propensity.md,
# docs/predictive-traits.md); null until a model first published.
PREDICTED_TRAITS = {
    "churn_probability": "customer_propensity", "purchase_probability_30d": "customer_propensity",
    "lead_conversion_probability": "customer_propensity",
    "expected_value_365d": "customer_clv", "probability_alive": "customer_clv",
}
# Identifier types a visitor can be looked up by (customer_id is the customer's own id).
LOOKUP_TYPES = ("email", "phone", "customer_id", "device_id", "shop_customer_id")


@dataclass(frozen=True)
class BuildResult:
    path: Path
    version: str
    customers: int
    identifiers: int
    audiences: int
    seconds: float


# ---- building ---------------------------------------------------------------------------------

BOOLEAN_TRAITS = frozenset({"is_b2b", "email_marketable", "consent_email", "consent_sms", "consent_ads",
                            "consent_profiling"})
PRODUCT_FIELDS = ("product_id", "product_name", "category", "price", "current_price", "is_on_promotion",
                  "discount_pct", "promotion_name", "promotion_ends_at")

# One row per customer with a column per public trait: SQLite stores it compactly and a lookup
# reads one row. Audiences are a comma-joined list, recommendations a small JSON array of
# [rank, product_id, score, reason]; products are a table of their own, read into memory.
_SCHEMA = f"""
create table meta (key text primary key, value text) without rowid;
create table identifiers (
    identifier_type text not null, identifier_value text not null,
    customer_id text,            -- null when the identifier is shared by several people
    people integer not null,
    primary key (identifier_type, identifier_value)) without rowid;
create table profiles (
    {", ".join(f"{t} {'text primary key' if t == 'customer_id' else ''}" for t in PUBLIC_TRAITS)},
    audiences text, recommendations text) without rowid;
create table products ({", ".join(f"{f} {'text primary key' if f == 'product_id' else ''}" for f in PRODUCT_FIELDS)})
    without rowid;
create table audiences (name text primary key, relation text not null) without rowid;
"""


def _audience_relations(con) -> list[tuple[str, str]]:
    rows = con.execute("""
        select table_name from information_schema.tables
        where table_schema = 'audiences' and table_name like 'aud\\_%' escape '\\' order by table_name""").fetchall()
    return [(name.removeprefix("aud_"), f'audiences."{name}"') for (name,) in rows]


def _profiles_sql(audiences: list[tuple[str, str]], predictions: frozenset[str] = frozenset()) -> str:
    """The profiles' rows; `predictions`: the tables of the `predictions` schema there are to join."""
    members = " union all ".join(f"select distinct customer_id, '{name}' as audience from {relation}"
                                 for name, relation in audiences) or \
        "select cast(null as varchar) as customer_id, cast(null as varchar) as audience where false"

    def trait(t: str) -> str:
        if t in PREDICTED_TRAITS:
            table = PREDICTED_TRAITS[t]
            return f"{table}.{t}" if table in predictions else f"cast(null as double) as {t}"
        return f"cast(c.{t} as bigint)" if t in {"lead_score", "orders_count"} else f"c.{t}"

    traits = ", ".join(trait(t) for t in PUBLIC_TRAITS)
    scores = "".join(f" left join predictions.{table} as {table} on {table}.customer_id = c.customer_id"
                     for table in sorted(predictions))
    return f"""
        with members as ({members}),
        memberships as (
            select customer_id, string_agg(audience, ',' order by audience) as audiences
            from members group by customer_id
        ),
        recommendations as (
            select customer_id,
                   to_json(list([cast(recommendation_rank as varchar), product_id, cast(score as varchar), reason]
                                order by recommendation_rank)) as recommendations
            from marts.customer_recommendations
            where recommendation_rank <= {TOP_RECOMMENDATIONS}
            group by customer_id
        )
        select {traits}, m.audiences, r.recommendations
        from marts.customers as c
        left join memberships as m on m.customer_id = c.customer_id
        left join recommendations as r on r.customer_id = c.customer_id
        {scores}
    """


_PRODUCTS_SQL = """
    select product_id, product_name, category, cast(price as double), cast(current_price as double),
           coalesce(is_on_promotion, false), cast(discount_pct as double), promotion_name,
           strftime(promotion_ends_at, '%Y-%m-%dT%H:%M:%SZ')
    from marts.products
"""


_IDENTIFIERS_SQL = f"""
    with ids as (
        select distinct identifier_type, identifier_value, customer_id from marts.customer_identifiers
        where identifier_type in ({", ".join(f"'{t}'" for t in LOOKUP_TYPES)}) and identifier_value is not null
        union all
        select 'customer_id', customer_id, customer_id from marts.customers
    )
    select identifier_type, identifier_value,
           case when count(distinct customer_id) = 1 then min(customer_id) end as customer_id,
           count(distinct customer_id) as people
    from ids group by identifier_type, identifier_value
"""


def _copy(cursor: duckdb.DuckDBPyConnection, sql: str, target: sqlite3.Connection, insert: str) -> int:
    cursor.execute(sql)
    n = 0
    while rows := cursor.fetchmany(50_000):
        target.executemany(insert, rows)
        n += len(rows)
    return n


def build_serving_store(warehouse_path: Path | str, out_dir: Path | str | None = None) -> Path:
    """Build a snapshot from the warehouse (opened read-only), publish it and return its folder."""
    return build_serving_snapshot(warehouse_path, out_dir).path


def build_serving_snapshot(warehouse_path: Path | str, out_dir: Path | str | None = None) -> BuildResult:
    """As `build_serving_store`, with the counts and the build time (the Dagster asset's metadata)."""
    started = time.monotonic()
    out = Path(out_dir or settings.serving_dir())
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".building-*"):  # left by a build that was killed; a live one is younger
        if time.time() - stale.stat().st_mtime > STALE_BUILD_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
    staging = out / f".building-{version}"
    staging.mkdir()
    try:
        db = sqlite3.connect(staging / STORE_FILE)
        db.executescript("pragma journal_mode = off; pragma synchronous = off; pragma page_size = 8192;" + _SCHEMA)
        with open_when_free(Path(warehouse_path), read_only=True) as con:  # waits while a writer has it
            con.execute("set enable_progress_bar = false")
            audiences = _audience_relations(con)
            db.executemany("insert into audiences values (?, ?)", audiences)
            marks = ", ".join("?" for _ in range(len(PUBLIC_TRAITS) + 2))
            published = frozenset(t for t in set(PREDICTED_TRAITS.values()) if has_table(con, "predictions", t))
            profiles = _profiles_sql(audiences, published)
            customers = _copy(con, profiles, db, f"insert into profiles values ({marks})")
            _copy(con, _PRODUCTS_SQL, db, f"insert into products values ({', '.join('?' for _ in PRODUCT_FIELDS)})")
            identifiers = _copy(con, _IDENTIFIERS_SQL, db, "insert into identifiers values (?, ?, ?, ?)")
        db.executemany("insert into meta values (?, ?)", [
            ("version", version), ("built_at", datetime.now(UTC).isoformat()),
            ("warehouse", str(Path(warehouse_path).resolve()))])
        db.commit()
        db.close()
        with _publishing(out):
            forgotten = _forgotten(out)
            if forgotten:
                _erase(staging / STORE_FILE, forgotten)
            _fsync_file(staging / STORE_FILE)
            _publish(out, staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult(out / version, version, customers, identifiers, len(audiences), time.monotonic() - started)


# ---- publishing -------------------------------------------------------------------------------

@contextlib.contextmanager
def _publishing(out: Path) -> Iterator[None]:
    with open(out / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(out: Path, staging: Path, version: str, keep_previous: int = KEEP_PREVIOUS) -> None:
    """Rename the built folder into place, then swap the pointer; drop all but a few older versions."""
    os.rename(staging, out / version)
    tmp = out / f".{POINTER}.{uuid.uuid4().hex}"
    tmp.write_text(version + "\n")
    _fsync_file(tmp)
    os.replace(tmp, out / POINTER)
    _fsync_dir(out)
    versions = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != version)
    for old in versions[: max(len(versions) - keep_previous, 0)]:
        shutil.rmtree(old, ignore_errors=True)


def current_version(out_dir: Path | str | None = None) -> str | None:
    """The published version's name, or None before the first build."""
    try:
        return (Path(out_dir or settings.serving_dir()) / POINTER).read_text().strip() or None
    except FileNotFoundError:
        return None


def current_store(out_dir: Path | str | None = None) -> Path | None:
    """The published snapshot's SQLite file, or None before the first build."""
    version = current_version(out_dir)
    return Path(out_dir or settings.serving_dir()) / version / STORE_FILE if version else None


# ---- forgetting -------------------------------------------------------------------------------

def _forgotten(out: Path) -> set[str]:
    try:
        return {line.strip() for line in (out / FORGOTTEN).read_text().splitlines() if line.strip()}
    except FileNotFoundError:
        return set()


def _erase(store: Path, customer_ids: Iterable[str]) -> int:
    ids = sorted(set(customer_ids))
    db = sqlite3.connect(store)
    try:
        db.execute("pragma secure_delete = on")  # freed pages are zeroed: the data is gone, not just unlinked
        marks = ", ".join("?" for _ in ids)
        n = db.execute(f"delete from profiles where customer_id in ({marks})", ids).rowcount
        db.execute(f"delete from identifiers where customer_id in ({marks})", ids)
        db.commit()
        return n
    finally:
        db.close()


def built_from(store: Path) -> Path | None:
    """The warehouse file a snapshot was built from."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        row = db.execute("select value from meta where key = 'warehouse'").fetchone()
        return Path(row[0]) if row else None
    finally:
        db.close()


def forget_from_serving(customer_ids: Iterable[str], out_dir: Path | str | None = None,
                        warehouse: Path | str | None = None) -> int:
    """Remove people from the serving store now: a new snapshot without them replaces every older one.

    Returns how many profiles the current snapshot held for them. Does nothing (0) where no serving
    store was built, or (given `warehouse`) where it was built from another warehouse: customer ids
    are digests of identifiers, so a test warehouse must not erase the demo's people.
    """
    ids = sorted(set(customer_ids))
    out = Path(out_dir or settings.serving_dir())
    if not ids or not out.is_dir():
        return 0
    source = current_store(out)
    if warehouse is not None and (source is None or not source.exists()
                                  or built_from(source) != Path(warehouse).resolve()):
        return 0
    with _publishing(out):
        with open(out / FORGOTTEN, "a") as listed:
            listed.writelines(f"{i}\n" for i in ids)
            listed.flush()
            os.fsync(listed.fileno())
        source = current_store(out)
        if source is None or not source.exists():
            return 0
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
        staging = out / f".building-{version}"
        staging.mkdir()
        try:
            shutil.copyfile(source, staging / STORE_FILE)
            removed = _erase(staging / STORE_FILE, ids)
            _fsync_file(staging / STORE_FILE)
            _publish(out, staging, version, keep_previous=0)  # older versions still hold the person
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return removed


# ---- reading ----------------------------------------------------------------------------------

class Snapshot:
    """One published snapshot, opened read-only and immutable (no locks, no journal)."""

    def __init__(self, path: Path, version: str):
        self.path = path
        self.version = version
        self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self.db.execute("pragma mmap_size = 1073741824")  # pages read straight from the OS cache, no copies
        self.audiences = {name for (name,) in self.db.execute("select name from audiences")}
        self.products = {row[0]: {f: (bool(v) if f == "is_on_promotion" else v) for f, v in zip(PRODUCT_FIELDS, row,
                                                                                              strict=True)}
                         for row in self.db.execute(f"select {', '.join(PRODUCT_FIELDS)} from products")}
        self._select = f"select {', '.join(PUBLIC_TRAITS)}, audiences, recommendations from profiles where customer_id = ?"

    def resolve(self, identifier_type: str, value: str) -> tuple[str | None, int]:
        """(customer_id, people): (None, 0) unknown, (None, n>1) shared by several people."""
        row = self.db.execute("select customer_id, people from identifiers where identifier_type = ? "
                              "and identifier_value = ?", (identifier_type, value)).fetchone()
        return (row[0], row[1]) if row else (None, 0)

    def profile(self, customer_id: str) -> dict | None:
        """The customer's public traits, audiences and recommendations (product ids), or None."""
        row = self.db.execute(self._select, (customer_id,)).fetchone()
        if row is None:
            return None
        traits = {t: (bool(v) if t in BOOLEAN_TRAITS and v is not None else v)
                  for t, v in zip(PUBLIC_TRAITS, row, strict=False)}
        audiences, recommendations = row[-2], row[-1]
        return {"traits": traits, "audiences": audiences.split(",") if audiences else [],
                "recommendations": [{"rank": int(rank), "product_id": product_id, "score": float(score),
                                     "reason": reason}
                                    for rank, product_id, score, reason in json.loads(recommendations or "[]")]}

    def product(self, product_id: str | None) -> dict | None:
        return self.products.get(product_id) if product_id else None

    def close(self) -> None:
        self.db.close()


class ServingStore:
    """Follows the `current` pointer: re-reads it at most every `check_seconds` and switches snapshots."""

    def __init__(self, out_dir: Path | str | None = None, check_seconds: float = 1.0):
        self.out = Path(out_dir or settings.serving_dir())
        self.check_seconds = check_seconds
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")

    def snapshot(self) -> Snapshot | None:
        """The current snapshot, or None when none was published yet."""
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            self._refresh()
        return self._snapshot

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.out / POINTER)
        except FileNotFoundError:
            return
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp == self._stamp:
            return
        version = current_version(self.out)
        if version is None:
            return
        path = self.out / version / STORE_FILE
        try:
            fresh = Snapshot(path, version)
        except sqlite3.Error:
            return  # pruned between reading the pointer and opening it: the next check finds the newer one
        old, self._snapshot, self._stamp = self._snapshot, fresh, stamp
        if old is not None:
            old.close()  # callers use a snapshot within one synchronous call: nobody is mid-query

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None
