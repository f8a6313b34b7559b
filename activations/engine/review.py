"""A plan as a reviewable file: counts, sample rows and a fingerprint of what would be sent.

`attiva plan` writes the file; `attiva apply` hands its fingerprint to the run, which
refuses when the recomputed plan is not the one that was reviewed (drt-core's plan/apply).
The fingerprint is an order-independent sum of per-row md5s, computed while the rows
stream out of the warehouse, so it costs one scan of the plan's rows and little memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from activations.engine import ledger
from activations.engine.plan import Plan, plan_sync
from activations.engine.state import ensure_state
from activations.manifest import Sync

FORMAT = 1  # bump when the file's shape or the fingerprint's recipe changes
SAMPLE_ROWS = 10
OPERATIONS = ("add", "update", "remove")
COUNTS = ("adds", "updates", "removes", "unchanged", "eligible_rows", "audience_rows", "snapshot_rows")
CHANGED = "the plan changed since it was reviewed"
READ_ROWS = 100_000

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass(frozen=True)
class Review:
    """A plan file as `attiva plan` wrote it."""

    path: Path
    sync: str
    plan_id: str
    mode: str
    full_resync: bool
    planned_at: str
    fingerprint: str
    counts: dict[str, int]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)  # changes the sync's mode does not send


def plan_for_review(con, sync: Sync, planned_at: datetime, *, full_resync: bool = False) -> Plan:
    """Plan as a run would: a crashed run's confirmations are folded first, so the review matches the apply."""
    ensure_state(con)
    ledger.recover(con, sync.name, planned_at)
    return plan_sync(con, sync, planned_at, full_resync=full_resync)


def fingerprint(con, plan_id: str) -> str:
    """A digest of the set of (operation, row_key, row_hash) the plan sends, whatever their order."""
    # md5 and || are in every warehouse's SQL; the order-independent sum happens here, a chunk at a time.
    query = """
        select md5(operation || '|' || row_key || '|' || coalesce(row_hash, '')) as h
        from activation.sync_plan_rows where plan_id = ? and will_send"""
    import numpy as np  # here, not at the top: every sync imports this module, few fingerprint (0.05 s)

    rows = 0
    total = np.zeros(4, dtype=np.uint64)
    # A cursor of its own: a result the caller left open on `con` (a guard's fetchone) must not stop the read.
    reader = con.cursor()
    try:
        for batch in reader.sql(query, params=[plan_id]).to_arrow_reader(READ_ROWS):
            if batch.num_rows:
                total += _digest_words(batch.column(0)).sum(axis=0, dtype=np.uint64)  # wraps modulo 2**64
                rows += batch.num_rows
    finally:
        reader.close()
    return hashlib.sha256(f"attiva-plan-v{FORMAT}:{rows}:{':'.join(map(str, total))}".encode()).hexdigest()


def _digest_words(column: pa.Array) -> np.ndarray:
    """Each row's 32 hex digits as four 64-bit words, shape (rows, 4), read in place from Arrow's buffer.

    The words are the ASCII text itself, not the decoded digest: any changed row still changes
    the sums (each word carries 32 bits of the md5), and skipping the decoding halves the cost.
    """
    import numpy as np
    import pyarrow as pa

    if column.type != pa.large_string():
        column = column.cast(pa.large_string())
    if column.null_count:
        raise ValueError("a plan row has no key: cannot fingerprint it")
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64)[column.offset:column.offset + len(column) + 1]
    text = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    if text.size != 32 * len(column):
        raise ValueError("md5 did not return 32 hex digits per row")
    return text.view("<u8").reshape(len(column), 4)


def write_review(con, sync: Sync, plan: Plan, folder: Path, *, full_resync: bool = False) -> Path:
    """Write `<folder>/<sync>__<plan_id>.json`: counts, up to 10 sample rows per operation, fingerprint."""
    planned_at = con.execute("select planned_at from activation.sync_plans where plan_id = ?",
                             [plan.plan_id]).fetchone()
    left_out = dict(con.execute("""
        select operation, count(*) from activation.sync_plan_rows
        where plan_id = ? and not will_send group by operation""", [plan.plan_id]).fetchall())
    document = {
        "attiva_plan": FORMAT,
        "sync": sync.name,
        "plan_id": plan.plan_id,
        "planned_at": _iso(planned_at[0]) if planned_at else None,
        "audience": sync.audience.name,
        "destination": sync.destination,
        "mode": sync.mode,
        "full_resync": full_resync,
        "counts": {name: getattr(plan, name) for name in COUNTS},
        # Changes this mode does not send (an insert-only sync leaves updates out), for the reviewer.
        "left_out": {op: int(n) for op, n in sorted(left_out.items())},
        "samples": {op: samples(con, sync, plan.plan_id, op) for op in OPERATIONS},
        "fingerprint": fingerprint(con, plan.plan_id),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sync.name}__{plan.plan_id}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def samples(con, sync: Sync, plan_id: str, operation: str, limit: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """Up to `limit` rows the plan sends for `operation`: the key, plus the mapped columns unless removed."""
    picked = f"""select row_key from activation.sync_plan_rows
                 where plan_id = ? and will_send and operation = ? order by row_key limit {int(limit)}"""
    if operation == "remove":
        return [{"key": key} for (key,) in con.execute(picked, [plan_id, operation]).fetchall()]
    # Neutral aliases: SQL folds case, and `Email` and `email` may both be mapped.
    names = [*sync.identifiers, *sync.fields]
    columns = [*sync.identifiers.values(), *sync.fields.values()]
    mapped = ", ".join(f"a.{col} as _c{i}" for i, col in enumerate(columns))
    rows = con.execute(f"""
        with picked as ({picked})
        select p.row_key, {mapped}
        from picked as p
        join {sync.audience.relation} as a on cast(a.{sync.key} as string) = p.row_key
        order by p.row_key""", [plan_id, operation]).fetchall()
    return [{"key": row[0], **dict(zip(names, row[1:], strict=True))} for row in rows]


def read_review(path: Path | str) -> Review:
    """A plan file written by `write_review`; ValueError when it is not one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no plan file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a plan file ({exc})") from None
    if not isinstance(document, dict) or document.get("attiva_plan") != FORMAT:
        raise ValueError(f"{path} is not a plan file written by this version of `attiva plan`")
    missing = [key for key in ("sync", "plan_id", "mode", "fingerprint", "counts") if key not in document]
    if missing:
        raise ValueError(f"{path}: the plan file has no {', '.join(missing)}")
    return Review(path=path, sync=str(document["sync"]), plan_id=str(document["plan_id"]),
                  mode=str(document["mode"]), full_resync=bool(document.get("full_resync")),
                  planned_at=str(document.get("planned_at")), fingerprint=str(document["fingerprint"]),
                  counts={k: int(v) for k, v in document["counts"].items()},
                  samples=document.get("samples") or {},
                  left_out={k: int(v) for k, v in (document.get("left_out") or {}).items()})


def rest_of_reviewed(con, sync: Sync, reviewed_plan_id: str, plan_id: str) -> bool:
    """Whether plan `plan_id` is what is left of the reviewed plan after earlier runs applied part or
    all of it (a run killed or stopped midway): every row it sends was reviewed as it is, and every
    reviewed row it no longer sends is confirmed (in the snapshot as reviewed, or removed from it).

    False when the reviewed plan's rows are gone (another plan of the sync was made since).
    """
    same = """n.operation = r.operation and n.row_key = r.row_key
              and coalesce(n.row_hash, '') = coalesce(r.row_hash, '')"""
    reviewed = con.execute("select count(*) from activation.sync_plan_rows where plan_id = ? and will_send",
                           [reviewed_plan_id]).fetchall()[0][0]
    if not reviewed:
        return False
    # Left joins, not correlated subqueries: every warehouse the engine runs on plans them the same way.
    unreviewed = con.execute(f"""
        select count(*) from activation.sync_plan_rows as n
        left join activation.sync_plan_rows as r on r.plan_id = ? and r.will_send and {same}
        where n.plan_id = ? and n.will_send and r.row_key is null""", [reviewed_plan_id, plan_id]).fetchall()[0][0]
    if unreviewed:
        return False
    # Reviewed rows this plan no longer sends must have reached the destination as reviewed.
    undone = con.execute(f"""
        select count(*) from activation.sync_plan_rows as r
        left join activation.sync_plan_rows as n on n.plan_id = ? and n.will_send and {same}
        left join activation.sync_snapshots as s on s.sync_name = ? and s.row_key = r.row_key
        where r.plan_id = ? and r.will_send and n.row_key is null
          and case when r.operation = 'remove' then s.row_key is not null
                   else s.row_key is null or coalesce(s.row_hash, '') <> coalesce(r.row_hash, '') end""",
                         [plan_id, sync.name, reviewed_plan_id]).fetchall()[0][0]
    return not undone


def plan_changed(sync: Sync) -> str:
    """Why a run refuses a plan that is not the reviewed one, and what to do."""
    return (f"{sync.name}: {CHANGED}; nothing was sent. Run `attiva plan {sync.name}` again "
            f"and review the new file.")


def _iso(value: Any) -> str:
    # The engine stores UTC in plain timestamps.
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)
