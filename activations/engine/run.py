"""Run one sync: plan -> guards -> send (streamed, batched, paced, concurrent) -> fold -> log.

Rows stream out of the warehouse as Arrow chunks, so a 10M-row sync holds a few
chunks in memory, never the audience. Identifiers are prepared per chunk with
polars; batches go to a thread pool bounded by the destination's concurrency;
the destination's verdicts are appended to the ledger as they arrive.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import polars as pl

from activations.destinations.base import (
    DESTINATION_ID_COLUMN,
    KEY_COLUMN,
    BatchPart,
    Destination,
    DestinationError,
    UploadReport,
)
from activations.destinations.identifiers import INVALID_REASON_COLUMN, prepare_identifiers
from activations.engine import ledger
from activations.engine.deliver import Delivered, GaveUp, RetryPolicy, SyncStopped, deliver
from activations.engine.dialect import update
from activations.engine.guards import check_guards
from activations.engine.pace import bucket_for
from activations.engine.plan import SEND_OPERATIONS, Plan, plan_sync, row_hash_sql
from activations.engine.review import fingerprint, plan_changed, rest_of_reviewed
from activations.engine.state import DELIVERED, DELIVERED_EXCEPT_INVALID, PARTIAL, ensure_state
from activations.manifest import Sync

ROW_HASH = "_row_hash"
PLANNED = "_planned"  # the plan's operation (add, update): confirmed adds go straight into the snapshot
IDENTIFIERS = "_identifiers"
PREVIOUS = "_previous_identifiers"
CHUNK_ROWS = 100_000  # rows read from the warehouse at a time
# DuckDB stores rows in groups of 122,880: an append of whole groups is written straight to the file,
# compressed, while a ragged one waits in the log and costs ~0.5 s per 1M rows at the next checkpoint.
ROW_GROUP_ROWS = 122_880
FLUSH_ROWS = 2 * ROW_GROUP_ROWS  # verdicts buffered before they are appended to the ledger
FLUSH_SECONDS = 2.0

DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class SyncProgress:
    """Where a running sync stands, for a progress bar: rows answered of the rows to do, since when,
    the rate-limit pause the destination asked for, and rows sent again after a failed request."""

    done: int
    total: int
    started: float  # time.monotonic() when sending began
    paused_until: float = 0.0  # time.monotonic() when the current rate-limit pause ends
    paused_seconds: float = 0.0  # rate-limit pauses so far, in all
    resent: int = 0

    def rows_per_second(self, now: float | None = None) -> float:
        """Rows answered per second of wall time, pauses included: the rate the sync really goes at."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def paused_left(self, now: float | None = None) -> float:
        """Seconds left in the destination's current pause (0 when sending)."""
        return max(0.0, self.paused_until - (time.monotonic() if now is None else now))


Progress = Callable[[SyncProgress], None]


@dataclass(frozen=True)
class SyncResult:
    run_id: str
    sync_name: str
    status: str  # engine/state.py: success, partial, delivered_except_invalid, refused, stopped, failed
    plan: Plan | None
    planned: int = 0
    sent: int = 0
    confirmed: int = 0
    rejected: int = 0
    invalid: int = 0
    resent: int = 0  # rows carried again by retried requests
    paused_seconds: float = 0.0  # rate-limit pauses the destination asked for, in all
    seconds: float = 0.0
    error: str | None = None
    upload: UploadReport | None = None  # what the destination itself reported, if it reports anything

    @property
    def ok(self) -> bool:
        return self.status in DELIVERED

    def __str__(self) -> str:
        line = (f"{self.sync_name}: {self.status} in {self.seconds:.1f}s: {self.planned:,} planned, "
                f"{self.sent:,} sent, {self.confirmed:,} confirmed, {self.rejected:,} rejected, "
                f"{self.invalid:,} invalid")
        if self.resent or self.paused_seconds:
            line += f"; {self.resent:,} re-sent, paused {self.paused_seconds:.1f}s (rate limits)"
        return f"{line}\n  {self.error}" if self.error else line


class SyncRefused(Exception):
    """A guard refused the sync; `result` is the logged run."""

    def __init__(self, result: SyncResult) -> None:
        super().__init__(result.error)
        self.result = result


_running: set[str] = set()
_running_lock = threading.Lock()


def run_sync(con, sync: Sync, client: Destination, *, now: datetime | None = None, force: bool = False,
             full_resync: bool = False, only_rejected: bool = False, policy: RetryPolicy = DEFAULT_POLICY,
             on_progress: Progress | None = None, expect_fingerprint: str | None = None,
             reviewed_plan: str | None = None) -> SyncResult:
    """Bring the destination in line with the audience; every row's outcome lands in the warehouse.

    Raises SyncRefused when a guard stops the run, or when `expect_fingerprint` (the reviewed plan's,
    whose id is `reviewed_plan`) differs from the recomputed plan's and the difference is not what
    earlier runs of the reviewed plan delivered (nothing is sent); a destination that is misconfigured
    or answers nonsense raises after what it confirmed has been recorded.
    """
    with _running_lock:
        if sync.name in _running:
            raise RuntimeError(f"{sync.name} is already running in this process")
        _running.add(sync.name)
    try:
        return _run(con, sync, client, now or datetime.now(UTC), force, full_resync, only_rejected, policy,
                    on_progress, expect_fingerprint, reviewed_plan)
    finally:
        with _running_lock:
            _running.discard(sync.name)


def _run(con, sync, client, now, force, full_resync, only_rejected, policy, on_progress,
         expect_fingerprint=None, reviewed_plan=None) -> SyncResult:
    ensure_state(con)
    ledger.recover(con, sync.name, now)
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:12]
    con.execute("""insert into activation.sync_runs (run_id, sync_name, destination, mode, status, started_at)
                   values (?, ?, ?, ?, 'running', ?)""", [run_id, sync.name, sync.destination, sync.mode, now])
    try:
        plan = plan_sync(con, sync, now, full_resync=full_resync, only_rejected=only_rejected,
                         keep_plan=reviewed_plan)
    except Exception as exc:  # the audience is missing, a column was renamed: the run failed, not crashed
        failed = SyncResult(run_id, sync.name, "failed", None, error=f"planning failed: {client_safe(client, exc)}",
                            seconds=time.monotonic() - started)
        _log(con, failed, now)
        raise
    result = SyncResult(run_id, sync.name, "running", plan, planned=plan.adds + plan.updates + plan.removes)
    refusal = None if force else check_guards(con, sync, plan)
    if (expect_fingerprint is not None and fingerprint(con, plan.plan_id) != expect_fingerprint
            and not (reviewed_plan and rest_of_reviewed(con, sync, reviewed_plan, plan.plan_id))):
        refusal = plan_changed(sync)  # not the plan that was reviewed, nor what is left of it: refused, forced or not
    if full_resync and "full_resync" not in client.capabilities.modes:
        # A conversion is sent once: resending every one would count each purchase again (refused, forced or not).
        refusal = f"{sync.destination} ({client.capabilities.type}) sends each row once and offers no full resync"
    if refusal is not None:
        result = replace(result, status="refused", error=str(refusal), seconds=time.monotonic() - started)
        _log(con, result, now)
        raise SyncRefused(result)

    sender = _Sender(con, sync, client, run_id, policy, on_progress, result.planned)
    status, error = "interrupted", "the run was interrupted; what the destination confirmed was kept"
    try:
        sender.send_all(plan)
        status, error = "success", None
    except SyncStopped as exc:
        status, error = "stopped", str(exc)
    except (DestinationError, Exception) as exc:
        status, error = "failed", client_safe(client, exc)
    finally:
        sender.flush(wait=True)
        complete = status == "success" and not only_rejected
        counts = sender.counts
        if status == "success" and sender.undelivered:
            status = PARTIAL  # some rows may go through next time: this run did not deliver everything it could
        elif status == "success" and (counts["rejected"] or counts["invalid"]):
            status = DELIVERED_EXCEPT_INVALID  # only rows the destination never takes as they are are left
        upload = _upload_report(client)  # may ask the platform: before the end is recorded, not between
        result = replace(result, status=status, error=error, seconds=time.monotonic() - started, upload=upload,
                         paused_seconds=sender.paused_seconds(), **counts)
        # The fold and the run's status in one transaction: a kill after it leaves a finished run.
        ledger.fold(con, sync.name, run_id, plan.plan_id if complete else None, ended=_ended(result, now))
    if status == "failed":
        raise SyncFailed(result)
    return result


def _verdict_columns(delivered: Delivered, rows: int) -> list[pl.Expr | pl.Series]:
    """ok, destination_id, reason, http_status, tries and kind (of a row not delivered) of each row, as columns.

    A batch the destination took whole comes back as one shared verdict (and one try count):
    made into constant columns, not read row by row (10k Python reads per batch otherwise).
    """
    results, tries = delivered.results, delivered.tries
    if rows and results.count(results[0]) == rows and tries.count(tries[0]) == rows:
        only = results[0]
        return [pl.lit(only.ok).alias("ok"), pl.lit(only.destination_id, pl.String).alias("destination_id"),
                pl.lit(only.reason, pl.String).alias("reason"), pl.lit(only.status, pl.Int32).alias("http_status"),
                pl.lit(tries[0], pl.Int32).alias("tries"), pl.lit(_kind(only)).alias("kind")]
    return [pl.Series("ok", [r.ok for r in results], dtype=pl.Boolean),
            pl.Series("destination_id", [r.destination_id for r in results], dtype=pl.String),
            pl.Series("reason", [r.reason for r in results], dtype=pl.String),
            pl.Series("http_status", [r.status for r in results], dtype=pl.Int32),
            pl.Series("tries", tries, dtype=pl.Int32),
            pl.Series("kind", [_kind(r) for r in results], dtype=pl.String)]


def _kind(verdict) -> str:
    """Why a row was not delivered: the destination `rejected` it, or the engine gave up (`undelivered`)."""
    return "undelivered" if isinstance(verdict, GaveUp) else "rejected"


class SyncFailed(Exception):
    """The run could not go on (bad credentials, a broken client); what was confirmed is kept."""

    def __init__(self, result: SyncResult) -> None:
        super().__init__(result.error)
        self.result = result


def client_safe(client: Destination, exc: BaseException) -> str:
    """An error message with the destination's secret taken out, whatever raised it."""
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DestinationError) else str(exc)
    token = getattr(getattr(client, "config", None), "token", None)
    return token.redact(text) if token is not None else text


def _upload_report(client: Destination) -> UploadReport | None:
    """What the destination reported about this run's uploads (optional: most platforms report nothing)."""
    report = getattr(client, "upload_report", None)
    if report is None:
        return None
    try:
        return report()
    except Exception:  # noqa: BLE001 - a statistic the platform could not give must not fail a delivered run
        return None


def _log(con, result: SyncResult, started_at: datetime) -> None:
    update(con, "activation.sync_runs", _ended(result, started_at), "run_id = ?", [result.run_id])


def _ended(result: SyncResult, started_at: datetime) -> dict:
    """The run's row in activation.sync_runs as it ended."""
    finished = started_at + timedelta(seconds=result.seconds)
    upload = result.upload or UploadReport()
    return {
        "status": result.status, "plan_id": result.plan.plan_id if result.plan else None, "finished_at": finished,
        "duration_seconds": round(result.seconds, 3),
        "audience_rows": result.plan.audience_rows if result.plan else None, "planned": result.planned,
        "sent": result.sent, "confirmed": result.confirmed, "rejected": result.rejected, "invalid": result.invalid,
        "error": result.error, "resent": result.resent, "paused_seconds": round(result.paused_seconds, 3),
        "reported_received": upload.received, "reported_invalid": upload.invalid,
        "match_rate_low": upload.match_rate_low, "match_rate_high": upload.match_rate_high,
    }


class _Sender:
    """Streams a plan's rows to the destination and buffers verdicts for the ledger."""

    def __init__(self, con, sync: Sync, client: Destination, run_id: str, policy: RetryPolicy,
                 on_progress: Progress | None, total: int) -> None:
        self.con, self.sync, self.client, self.run_id, self.policy = con, sync, client, run_id, policy
        self.capabilities = client.capabilities
        self.bucket = bucket_for(sync.destination, self.capabilities)
        self.on_progress, self.total, self.done = on_progress, total, 0
        self.started = time.monotonic()
        self._paused_before = self.bucket.paused_seconds  # the bucket is shared with other syncs and runs
        self.counts = {"sent": 0, "confirmed": 0, "rejected": 0, "invalid": 0, "resent": 0}
        self.undelivered = 0  # of the rejected: rows the engine gave up on, which may go through next time
        self._confirmed: list[pl.DataFrame] = []
        self._errors: list[pl.DataFrame] = []
        self._buffered = 0
        self._last_flush = time.monotonic()
        self._held: dict[str, str] = {}  # rows whose previous identity could not be removed, and why
        # Appends to the ledger run on a thread of their own, so reading and sending go on meanwhile;
        # one thread keeps them in order, and the run waits for all of them before it folds.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ledger-{sync.name}")
        self._writer_con = con.cursor()  # a connection is not shared between threads; a cursor of it is its own
        self._writes: list[Future] = []

    # -- reading ------------------------------------------------------------------------------

    def _chunks(self, plan: Plan, operation: str) -> Iterator[pl.DataFrame]:
        """The plan's rows for one operation with what the destination needs, a chunk at a time."""
        sync = self.sync
        if operation == "remove":
            query = f"""
                select p.row_key as {KEY_COLUMN}, p.row_hash as {ROW_HASH},
                       s.destination_id as {DESTINATION_ID_COLUMN}, s.identifiers as {IDENTIFIERS}
                from activation.sync_plan_rows as p
                left join activation.sync_snapshots as s on s.sync_name = ? and s.row_key = p.row_key
                where p.plan_id = ? and p.will_send and p.operation = 'remove'"""
            params = [sync.name, plan.plan_id]
            renames = {}
        else:  # upsert, or move: the updates, with the identifiers the destination confirmed last time
            moving = operation == "move"
            # Neutral aliases, renamed in polars: SQL folds case, and `Email` and `email` may both be mapped.
            names = [*sync.identifiers, *sync.fields]
            columns = [*sync.identifiers.values(), *sync.fields.values()]
            renames = {f"_c{i}": name for i, name in enumerate(names)}
            mapped = ", ".join(f"a.{col} as _c{i}" for i, col in enumerate(columns))
            previous = ("join activation.sync_snapshots as s on s.sync_name = ? and s.row_key = p.row_key"
                        if moving else "")
            # Two audience rows with one key (two customers sharing the email a sync is keyed on): the plan
            # chose one by its hash; the join on the hash sends that one. Rows identical in every mapped
            # column come once (`distinct`); deduplicating per chunk let them through across chunks.
            # A key dbt tests unique needs neither: the join on it finds the planned row.
            unique = sync.key in sync.audience.unique_columns
            audience = (f"{sync.audience.relation} as a" if unique else
                        f"(select *, {row_hash_sql(self.con, sync)} as _attiva_row_hash "
                        f"from {sync.audience.relation}) as a")
            query = f"""
                select {"" if unique else "distinct"} p.row_key as {KEY_COLUMN}, p.row_hash as {ROW_HASH},
                       p.operation as {PLANNED}, p.destination_id as {DESTINATION_ID_COLUMN}, {mapped}
                       {f", s.identifiers as {PREVIOUS}" if moving else ""}
                from activation.sync_plan_rows as p
                join {audience} on cast(a.{sync.key} as string) = p.row_key
                  {"" if unique else "and a._attiva_row_hash = p.row_hash"}
                {previous}
                where p.plan_id = ? and p.will_send and p.operation {"= 'update'" if moving else "<> 'remove'"}"""
            params = [sync.name, plan.plan_id] if moving else [plan.plan_id]
        # A cursor of its own: the ledger writer thread appends verdicts meanwhile on another.
        reader = self.con.cursor()
        try:
            for batch in reader.sql(query, params=params).to_arrow_reader(CHUNK_ROWS):
                if batch.num_rows:
                    # A hash collision aside, `distinct` above already made keys unique.
                    yield pl.from_arrow(batch).rename(renames).unique(KEY_COLUMN, keep="first")  # type: ignore
        finally:
            reader.close()

    def _prepared(self, operation: str, chunk: pl.DataFrame) -> pl.DataFrame:
        """Rows ready to send; rows without a usable identifier are set aside as invalid."""
        if not self.capabilities.identifiers:
            # Rows that name no one (a catalog's products): the platform knows them by the sync's key alone.
            return chunk.with_columns(pl.lit("{}").alias(IDENTIFIERS))
        kinds = list(self.sync.identifiers)
        if operation == "remove":
            decoded = chunk.with_columns(
                pl.col(IDENTIFIERS).str.json_decode(pl.Struct({kind: pl.String for kind in kinds})).alias("_ids")
            ).unnest("_ids")
            usable = pl.any_horizontal(pl.col(kind).is_not_null() for kind in kinds)
            invalid = decoded.filter(~usable).with_columns(
                pl.lit("no identifiers recorded for this row").alias(INVALID_REASON_COLUMN))
            self._set_aside(operation, invalid)
            return decoded.filter(usable)
        prepared = prepare_identifiers(chunk, self.capabilities)
        self._set_aside(operation, prepared.invalid)
        present = [kind for kind in kinds if kind in prepared.valid.columns]
        return prepared.valid.with_columns(pl.struct(present).struct.json_encode().alias(IDENTIFIERS))

    def _set_aside(self, operation: str, invalid: pl.DataFrame) -> None:
        if not invalid.height:
            return
        self.counts["invalid"] += invalid.height
        self._errors.append(pl.DataFrame({
            "row_key": invalid[KEY_COLUMN], "operation": [operation] * invalid.height,
            "kind": ["invalid"] * invalid.height, "reason": invalid[INVALID_REASON_COLUMN],
            "http_status": pl.Series([None] * invalid.height, dtype=pl.Int32),
            "tries": pl.Series([0] * invalid.height, dtype=pl.Int32)}))
        self._advance(invalid.height)

    # -- sending ------------------------------------------------------------------------------

    def _batches(self, plan: Plan) -> Iterator[tuple[str, pl.DataFrame, BatchPart]]:
        """Every batch of the plan, numbered per operation, the last of each flagged (Meta's sessions).

        Batches are full whatever size the warehouse's chunks come in (a parallel query hands them
        over in pieces): rows left over from one chunk start the next batch.
        """
        for operation, planned in (("upsert", plan.adds + plan.updates), ("remove", plan.removes)):
            if not planned:
                continue
            size = (self.capabilities.remove_batch_size or self.capabilities.batch_size
                    if operation == "remove" else self.capabilities.batch_size)
            wire = "remove" if operation == "remove" else "upsert"
            pending: pl.DataFrame | None = None  # a full batch, held back until we know it is not the last
            left: pl.DataFrame | None = None  # rows short of a batch
            seq = 0
            for chunk in self._chunks(plan, operation):
                ready = self._prepared(wire, chunk)
                if self._held:  # their previous identity is still at the destination: not this run
                    ready = ready.filter(~pl.col(KEY_COLUMN).is_in(list(self._held)))
                if left is not None:
                    ready = pl.concat([left, ready], how="vertical_relaxed")
                full = ready.height - ready.height % size
                for start in range(0, full, size):
                    if pending is not None:
                        seq += 1
                        yield wire, pending, BatchPart(seq, False, planned, f"{self.run_id}-{wire}")
                    pending = ready.slice(start, size)
                left = ready.slice(full) if full < ready.height else None
            for batch in (pending, left):
                if batch is not None:
                    seq += 1
                    last = batch is left or left is None
                    yield wire, batch, BatchPart(seq, last, planned, f"{self.run_id}-{wire}")

    def _moves(self, plan: Plan) -> Iterator[tuple[str, pl.DataFrame, BatchPart | None]]:
        """Updated rows whose identifiers changed (a new email): they leave under the old ones first.

        Only for syncs that remove, on platforms that know rows by their identifiers. Removing first
        matters: an old and a new identity sharing a phone number must end with the new one present.
        """
        removes = SEND_OPERATIONS[self.sync.mode][2]
        if not (plan.updates and removes and self.capabilities.supports_remove
                and self.capabilities.keyed_by_identifiers):
            return
        size = self.capabilities.remove_batch_size or self.capabilities.batch_size
        for chunk in self._chunks(plan, "move"):
            new = prepare_identifiers(chunk, self.capabilities).valid  # rows it sets aside are reported by the upsert
            kinds = [kind for kind in self.sync.identifiers if kind in new.columns]
            moved = new.with_columns(pl.struct(kinds).struct.json_encode().alias(IDENTIFIERS)).filter(
                pl.col(PREVIOUS).is_not_null() & (pl.col(PREVIOUS) != pl.col(IDENTIFIERS)))
            if moved.height:
                old = moved.select(KEY_COLUMN, ROW_HASH, DESTINATION_ID_COLUMN, pl.col(PREVIOUS).alias(IDENTIFIERS))
                ready = self._prepared("remove", old)
                for start in range(0, ready.height, size):
                    yield "remove", ready.slice(start, size), None

    def _deliver(self, pool: ThreadPoolExecutor, operation: str, batch: pl.DataFrame, part) -> Future:
        return pool.submit(deliver, self.client, operation, batch, part, self.bucket, self.policy,
                           on_pause=self._paused)

    def _send_moves(self, plan: Plan, pool: ThreadPoolExecutor) -> None:
        futures = {self._deliver(pool, op, batch, part): batch for op, batch, part in self._moves(plan)}
        for future, batch in futures.items():
            delivered = future.result()
            self.counts["resent"] += delivered.resent
            for key, verdict in zip(batch[KEY_COLUMN].to_list(), delivered.results, strict=True):
                if not verdict.ok:
                    self._held[key] = f"the previous identity could not be removed: {verdict.reason}"
        if self._held:  # held back by this run, not refused: the removal may go through next time
            self.counts["rejected"] += len(self._held)
            self.undelivered += len(self._held)
            self._errors.append(pl.DataFrame({
                "row_key": list(self._held), "operation": ["upsert"] * len(self._held),
                "kind": ["undelivered"] * len(self._held), "reason": list(self._held.values()),
                "http_status": pl.Series([None] * len(self._held), dtype=pl.Int32),
                "tries": pl.Series([1] * len(self._held), dtype=pl.Int32)}))
            self._advance(len(self._held))

    def send_all(self, plan: Plan) -> None:
        limit = self.capabilities.max_concurrency
        in_flight: dict[Future, tuple[str, pl.DataFrame]] = {}
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"sync-{self.sync.name}") as pool:
            self._send_moves(plan, pool)
            try:
                for operation, batch, part in self._batches(plan):
                    while len(in_flight) >= limit * 2:
                        self._collect(in_flight, FIRST_COMPLETED)
                    future = self._deliver(pool, operation, batch, part)
                    in_flight[future] = (operation, batch)
                    self.counts["sent"] += batch.height
                while in_flight:
                    self._collect(in_flight, FIRST_COMPLETED)
            except BaseException:
                # Stop feeding; keep every verdict that already came back (they are confirmations).
                for future in in_flight:
                    future.cancel()
                self._collect(in_flight, None, swallow=True)
                raise

    def _collect(self, in_flight: dict, return_when, swallow: bool = False) -> None:
        done, _ = wait(list(in_flight), return_when=return_when or ALL_COMPLETED)
        error: BaseException | None = None
        for future in done:
            operation, batch = in_flight.pop(future)
            if future.cancelled():
                self.counts["sent"] -= batch.height
                continue
            try:
                self._record(operation, batch, future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below once every verdict is kept
                self.counts["sent"] -= batch.height
                error = error or exc
        if error is not None and not swallow:
            raise error

    def _record(self, operation: str, batch: pl.DataFrame, delivered: Delivered) -> None:
        planned = [pl.col(PLANNED).alias(ledger.PLANNED)] if PLANNED in batch.columns else []
        verdicts = batch.select(
            pl.col(KEY_COLUMN).alias("row_key"), pl.lit(operation).alias("operation"), pl.col(ROW_HASH).alias("row_hash"),
            pl.col(IDENTIFIERS).alias("identifiers"), *planned, *_verdict_columns(delivered, batch.height))
        # A destination that gave no id this time keeps the one it gave before (HubSpot removals need it).
        if DESTINATION_ID_COLUMN in batch.columns:
            verdicts = verdicts.with_columns(pl.coalesce("destination_id", batch[DESTINATION_ID_COLUMN]))
        confirmed = verdicts.filter(pl.col("ok"))
        rejected = verdicts.filter(~pl.col("ok"))
        self.counts["resent"] += delivered.resent
        self.counts["confirmed"] += confirmed.height
        self.counts["rejected"] += rejected.height
        self.undelivered += rejected.filter(pl.col("kind") == "undelivered").height
        self._confirmed.append(confirmed)
        if rejected.height:
            self._errors.append(rejected.select(ledger.ERROR_COLUMNS))
        self._buffered += batch.height
        self._advance(batch.height)
        if self._buffered >= FLUSH_ROWS:
            self.flush(whole_groups=True)
        elif time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def _advance(self, rows: int) -> None:
        self.done += rows
        self._report()

    def _paused(self, seconds: float) -> None:
        self._report()  # from a sending thread: the bar shows the pause as it starts

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(SyncProgress(self.done, self.total, self.started, self.bucket.paused_until,
                                          self.paused_seconds(), self.counts["resent"]))

    def paused_seconds(self) -> float:
        """Rate-limit pauses since this run began (the bucket's, shared with other runs to the instance)."""
        return self.bucket.paused_seconds - self._paused_before

    def flush(self, wait: bool = False, whole_groups: bool = False) -> None:
        """Append the buffered verdicts to the ledger (one transaction each); `wait` for every append.

        `whole_groups` appends confirmations in whole row groups and keeps the rest for the next
        flush. An append that failed raises here, at the next flush: the run stops rather than send
        rows whose verdicts it cannot record.
        """
        confirmed = pl.concat(self._confirmed, how="diagonal_relaxed") if self._confirmed else pl.DataFrame()
        errors = pl.concat(self._errors, how="diagonal_relaxed") if self._errors else pl.DataFrame()
        cut = confirmed.height - confirmed.height % ROW_GROUP_ROWS if whole_groups else confirmed.height
        self._confirmed = [confirmed.slice(cut)] if cut < confirmed.height else []
        self._errors, self._buffered = [], confirmed.height - cut
        self._last_flush = time.monotonic()
        if cut or errors.height:
            # Back-pressure: a destination faster than the warehouse's appends (file export) must not
            # queue verdicts without bound; sending waits for all but the newest pending append.
            for write in self._writes[:-1]:
                write.result()
            self._writes.append(self._writer.submit(ledger.append, self._writer_con, self.run_id, self.sync.name,
                                                    confirmed.head(cut), errors, datetime.now(UTC)))
        if wait:
            self._writer.shutdown(wait=True)
            self._writer_con.close()
        for write in [write for write in self._writes if write.done()]:
            write.result()  # raises the failure of an append
            self._writes.remove(write)
