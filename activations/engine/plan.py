"""Plan a sync: diff the audience against the last confirmed snapshot, in SQL.

Only the columns the sync maps (key, identifiers, fields) count towards a change, so an
audience column nobody sends never causes an update. Rows without consent or without a
key are not eligible: they are never sent, and a mirror sync removes them if they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from activations.engine.dialect import delete, row_hash, sha256_hex
from activations.engine.state import ensure_state
from activations.manifest import Sync

SEND_OPERATIONS = {
    # mode -> (send adds, send updates, send removes, resend unchanged rows)
    "upsert": (True, True, False, False),
    "update": (False, True, False, False),
    "insert": (True, False, False, False),
    "mirror": (True, True, True, False),
    "full_resync": (True, True, True, True),
}


@dataclass(frozen=True)
class Plan:
    plan_id: str
    sync_name: str
    mode: str
    audience_rows: int
    eligible_rows: int
    adds: int
    updates: int
    removes: int
    unchanged: int
    snapshot_rows: int

    def __str__(self) -> str:
        return (f"plan {self.plan_id} for {self.sync_name} ({self.mode}): {self.adds:,} to add, "
                f"{self.updates:,} to update, {self.removes:,} to remove, {self.unchanged:,} unchanged "
                f"({self.eligible_rows:,} of {self.audience_rows:,} audience rows eligible)")


def row_hash_sql(con, sync: Sync) -> str:
    """The hash of the mapped columns (key, identifiers, fields) in a fixed order."""
    columns = [sync.key, *sorted(sync.identifiers.values()), *(sync.fields[k] for k in sorted(sync.fields))]
    return row_hash(con, columns)


def erased_sql(con, sync: Sync, alias: str) -> str:
    """True for an audience row (`alias`) that names a person `attiva forget` erased: the SHA-256 of its key,
    email or external id (lower-cased, trimmed) is in `activation.erased_hashes`."""
    columns = {sync.key, *(column for kind, column in sync.identifiers.items() if kind in ("email", "external_id")),
               *(column for name, column in sync.fields.items() if name.lower() == "email")}
    tests = [f"{sha256_hex(con, f'lower(trim(cast({alias}.{column} as string)))')} in "
             "(select value_sha256 from activation.erased_hashes)" for column in sorted(columns)]
    return f"coalesce({' or '.join(tests)}, false)"


def _drop_erased(con, sync: Sync, plan_id: str) -> None:
    """Take the rows naming an erased person out of the plan's sends (a late landing file brought them
    back). Only the planned rows are hashed, never the whole audience; nothing at all until someone
    was erased."""
    if not con.execute("select count(*) from activation.erased_hashes").fetchone()[0]:
        return
    delete(con, "activation.sync_plan_rows", f"""plan_id = ? and operation <> 'remove' and row_key in (
               select p.row_key from activation.sync_plan_rows as p
               join {sync.audience.relation} as a on cast(a.{sync.key} as string) = p.row_key
               where p.plan_id = ? and p.operation <> 'remove' and {erased_sql(con, sync, 'a')})""",
           [plan_id, plan_id])


def plan_sync(con, sync: Sync, planned_at: datetime, *, full_resync: bool = False,
              only_rejected: bool = False, keep_plan: str | None = None) -> Plan:
    """Diff `sync`'s audience against its snapshot; store the plan's rows; return the counts.

    `full_resync` resends every eligible row whatever the snapshot says; `only_rejected`
    keeps only the rows the destination rejected last time (`attiva retry`); `keep_plan` (a
    reviewed plan being applied) keeps that plan's rows, to tell what is left of it.
    """
    ensure_state(con)
    plan_id = uuid.uuid4().hex[:12]
    send_adds, send_updates, send_removes, resend = SEND_OPERATIONS[sync.mode]
    resend = resend or full_resync
    consent = f"and {sync.consent} = true" if sync.consent else ""
    rejected = ("and d.row_key in (select row_key from activation.sync_rejects where sync_name = ?)"
                if only_rejected else "")
    # Only the newest plan of a sync is ever applied, or the reviewed one: other plans' rows are dead weight.
    delete(con, "activation.sync_plan_rows", "sync_name = ? and plan_id <> ?", [sync.name, keep_plan or ""])
    # A key dbt tests unique (customer_id) needs no dedupe; another (email) may repeat: keep one row per key.
    eligible = ("select row_key, row_hash from _attiva_audience where eligible = 1"
                if sync.key in sync.audience.unique_columns else
                "select row_key, max(row_hash) as row_hash from _attiva_audience where eligible = 1 group by row_key")
    diff = f"""
        with _attiva_audience as (
            select cast({sync.key} as string) as row_key, {row_hash_sql(con, sync)} as row_hash,
                   case when {sync.key} is not null {consent} then 1 else 0 end as eligible
            from {sync.audience.relation}
        ),
        _attiva_eligible as ({eligible}),
        _attiva_snapshot as (select row_key, row_hash, destination_id from activation.sync_snapshots
                             where sync_name = ?)
        select
            case
                when s.row_key is null then 'add'
                when e.row_key is null then 'remove'
                when e.row_hash <> s.row_hash then 'update'
                else 'unchanged'
            end as operation,
            coalesce(e.row_key, s.row_key) as row_key,
            coalesce(e.row_hash, s.row_hash) as row_hash,
            s.destination_id
        from _attiva_eligible as e
        full outer join _attiva_snapshot as s on e.row_key = s.row_key
    """
    # One pass: every changed row is stored (the review shows what the mode leaves out too),
    # flagged with whether this mode sends it; a full resync also resends unchanged rows.
    sent = " or ".join([f"d.operation = '{op}'" for op, on in
                        (("add", send_adds), ("update", send_updates), ("remove", send_removes)) if on] or ["false"])
    con.execute(f"""
        insert into activation.sync_plan_rows
        select ?, ?, case when d.operation = 'unchanged' then 'update' else d.operation end,
               d.row_key, d.row_hash, d.destination_id, {sent} or d.operation = 'unchanged'
        from ({diff}) as d
        where (d.operation <> 'unchanged' {"or true" if resend else ""}) {rejected}
    """, [plan_id, sync.name, sync.name] + ([sync.name] if only_rejected else []))
    # A person forgotten is never sent again, even when a late landing file brings them back.
    _drop_erased(con, sync, plan_id)
    adds, updates, removes = (int(v or 0) for v in con.execute("""
        select sum(case when operation = 'add' then 1 else 0 end),
               sum(case when operation = 'update' then 1 else 0 end),
               sum(case when operation = 'remove' then 1 else 0 end)
        from activation.sync_plan_rows where plan_id = ?""", [plan_id]).fetchone())
    audience_rows = con.execute(f"select count(*) from {sync.audience.relation}").fetchone()[0]
    snapshot_rows = con.execute("select count(*) from activation.sync_snapshots where sync_name = ?",
                                [sync.name]).fetchone()[0]
    if only_rejected:
        eligible_rows = con.execute(f"""select count(distinct case when {sync.key} is not null {consent}
                                        then {sync.key} end) from {sync.audience.relation}""").fetchone()[0]
    else:
        # Every change is stored, so what is eligible follows without another pass over the audience.
        eligible_rows = snapshot_rows - removes + adds
    # A full resync stored its unchanged rows as updates; a retry leaves out all but the rejected.
    unchanged = 0 if resend else max(eligible_rows - adds - updates, 0)
    plan = Plan(plan_id=plan_id, sync_name=sync.name, mode=sync.mode, audience_rows=audience_rows,
                eligible_rows=eligible_rows, adds=adds if send_adds else 0,
                updates=updates if send_updates else 0, removes=removes if send_removes else 0,
                unchanged=unchanged, snapshot_rows=snapshot_rows)
    con.execute("insert into activation.sync_plans values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [plan.plan_id, plan.sync_name, plan.mode, planned_at, plan.audience_rows, plan.eligible_rows,
                 plan.adds, plan.updates, plan.removes, plan.unchanged, plan.snapshot_rows])
    return plan
