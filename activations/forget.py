"""`attiva forget EMAIL|CUSTOMER_ID`: erase a person's personal data from the warehouse.

- Their email addresses go on the suppression list, their phone numbers on the SMS suppression
  list and their app's push tokens on the retired push tokens, hashed (sha256): nothing is ever sent to
  them again, even if they come back in a new export.
- Raw rows that identify them keep what the business needs (orders, amounts, dates) with the
  personal columns nulled (an email column reads `erased`, so required-email tests still pass); every derived row (identity graph, marts, audiences, triggers)
  holding their customer id or identifiers is deleted. The next dbt run cannot bring them back,
  since the raw data no longer names them.
- Every destination that may hold them is asked to delete them with its own deletion API, whatever
  the syncs' modes: a tracked erasure request, retried until each destination confirmed
  (activations/erasure.py, `attiva forget --status`). Their rows leave every sync's snapshot, and the
  engine's plan never sends anyone whose key or email hashes to an erased one, even from a late file.
  Planned messages to them are suppressed.
- The personalization API's serving store gets a snapshot without them at once, and every older
  snapshot is deleted (activations/serve/store.py, `forget_from_serving`), and their in-app messages leave
  the inbox beside it (activations/messaging/inbox.py).

The landing files themselves are outside the warehouse: delete or re-export them at the source.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from activations.destinations import DestinationConfig, DestinationConfigError, load_destinations
from activations.engine.dialect import has_table
from activations.engine.state import ensure_state
from activations.erasure import Subject, request_erasure
from activations.messaging import push
from activations.messaging.inbox import Inbox
from activations.messaging.ledger import ensure_ledger
from activations.serve.store import forget_from_serving

PERSONAL_COLUMNS = ("email", "phone", "first_name", "last_name", "birth_date", "address", "city", "postal_code",
                    "company", "job_title", "push_token", "full_name", "field_data",  # these two: lead-ad forms
                    "shipping_first_name", "shipping_last_name", "shipping_address", "shipping_city",
                    "shipping_postal_code", "from_id", "from_name", "message")  # the last three: social
# Which raw column holds each kind of source identifier the identity graph knows, and the expression that
# spells it as the graph does (a social handle is platform:from_id, as stg_social__interactions writes it).
SOURCE_ID_COLUMNS = {"crm_contact_id": ("contact_id", "cast(contact_id as string)"),
                     "shop_customer_id": ("shop_customer_id", "cast(shop_customer_id as string)"),
                     "device_id": ("anonymous_id", "cast(anonymous_id as string)"),
                     "guest_order_id": ("order_id", "cast(order_id as string)"),
                     "meta_lead_id": ("lead_id", "cast(lead_id as string)"),
                     "social_user_id": ("from_id", "lower(trim(platform)) || ':' || trim(from_id)")}
ERASED = "erased"  # what an erased email column reads in raw tables (not an address: staging nulls it)
# `predictions`: the scores models publish per customer (customer_clv, customer_propensity).
DERIVED_SCHEMAS = ("staging", "intermediate", "marts", "audiences", "triggers", "predictions")


@dataclass
class ForgetReport:
    customers: list[str]
    emails: int = 0
    phones: int = 0
    push_tokens: int = 0
    raw_rows_erased: dict[str, int] = field(default_factory=dict)
    derived_rows_deleted: dict[str, int] = field(default_factory=dict)
    request_id: str | None = None
    erasing_at: list[str] = field(default_factory=list)  # destination instances asked to delete them
    messages_suppressed: int = 0
    serving_profiles_removed: int = 0
    in_app_messages_deleted: int = 0

    def __str__(self) -> str:
        if not self.customers:
            return "nobody matched: nothing erased"
        lines = [f"forgot {len(self.customers)} customer(s): {', '.join(self.customers)}",
                 f"  {self.emails} email address(es) added to the suppression list (hashed)",
                 f"  {self.phones} phone number(s) added to the SMS suppression list (hashed)",
                 f"  {self.push_tokens} app push token(s) retired (hashed)",
                 f"  raw rows with personal data erased: {sum(self.raw_rows_erased.values())} "
                 f"({', '.join(f'{t} {n}' for t, n in sorted(self.raw_rows_erased.items()) if n) or 'none'})",
                 f"  derived rows deleted: {sum(self.derived_rows_deleted.values())}",
                 f"  planned messages suppressed: {self.messages_suppressed}"]
        lines.append(f"  erasure request {self.request_id}: deletion asked at "
                     f"{', '.join(self.erasing_at) or 'no destination'} (see `attiva forget --status`)")
        if self.serving_profiles_removed:
            lines.append(f"  removed from the personalization API's serving store: {self.serving_profiles_removed}")
        if self.in_app_messages_deleted:
            lines.append(f"  in-app messages deleted from the inbox: {self.in_app_messages_deleted}")
        return "\n".join(lines)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _tables(con, schemas: tuple[str, ...]) -> dict[str, set[str]]:
    marks = ", ".join("?" for _ in schemas)
    rows = con.execute(f"""
        select c.table_schema || '.' || c.table_name, c.column_name
        from information_schema.columns as c
        join information_schema.tables as t on t.table_schema = c.table_schema and t.table_name = c.table_name
        where c.table_schema in ({marks}) and t.table_type = 'BASE TABLE'""", list(schemas)).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def forget(con, who: str, now: datetime | None = None,
           destinations: dict[str, DestinationConfig] | None = None) -> ForgetReport:
    """Erase the person identified by an email address or a customer id from the warehouse, and record the
    erasure request every destination must confirm (`activations.erasure.drive_erasures` sends it)."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    ensure_state(con)
    ensure_ledger(con)
    who = who.strip()
    if "@" in who:
        customers = [r[0] for r in con.execute("""
            select distinct customer_id from marts.customer_identifiers
            where identifier_type = 'email' and identifier_value = ?""", [who.lower()]).fetchall()]
    else:
        customers = [r[0] for r in con.execute(
            "select customer_id from marts.customers where customer_id = ?", [who]).fetchall()]
    report = ForgetReport(customers=sorted(customers))
    identifiers = con.execute(f"""
        select identifier_type, identifier_value from marts.customer_identifiers
        where customer_id in ({", ".join("?" for _ in customers) or "null"})""", customers).fetchall()
    by_type: dict[str, set[str]] = {}
    for kind, value in identifiers:
        by_type.setdefault(kind, set()).add(str(value))
    emails = by_type.get("email", set()) | ({who.lower()} if "@" in who else set())
    phones = {d for p in by_type.get("phone", set()) for d in (_digits(p), "00" + _digits(p), _digits(p)[2:])}

    # 1. Never again: the hashed addresses, even when nobody in the warehouse matched.
    for address in sorted(emails):
        con.execute("insert into activation.suppression_list values (?, 'forgotten', ?)",
                    [hashlib.sha256(address.encode()).hexdigest(), now])
    report.emails = len(emails)
    # ...and their numbers on the SMS suppression list, hashed as the send step hashes a customer's E.164 phone.
    numbers = sorted(by_type.get("phone", set()))
    for number in numbers:
        con.execute("insert into activation.sms_suppression_list values (?, 'forgotten', ?)",
                    [hashlib.sha256(re.sub(r"\s", "", number).encode()).hexdigest(), now])
    report.phones = len(numbers)
    # ...and their app's device tokens retired: no push reaches their phone, even from a token a late file lists.
    if customers and has_table(con, "marts", "customer_push_tokens"):
        tokens = [r[0] for r in con.execute(f"""
            select push_token from marts.customer_push_tokens
            where customer_id in ({", ".join("?" for _ in customers)})""", customers).fetchall()]
        push.retire(con, tokens, "forgotten", now)
        report.push_tokens = len(set(tokens))

    # 2. Every destination that may hold them deletes them: a tracked request, their rows out of the snapshots.
    if destinations is None:
        try:
            destinations = load_destinations()
        except DestinationConfigError:
            destinations = {}  # no destinations file: the snapshots still say who held them
    others = {v for kind, vs in by_type.items() if kind not in ("email", "phone", "guest_order_id") for v in vs}
    subject = Subject(customers=sorted(customers), emails=emails, phones=by_type.get("phone", set()),
                      other_ids=others)
    report.request_id = request_erasure(con, who, subject, destinations, now)
    report.erasing_at = [row[0] for row in con.execute(
        "select destination from activation.erasure_destinations where request_id = ? order by destination",
        [report.request_id]).fetchall()]
    if not customers:
        return report

    # 3. Raw rows that name them: personal columns nulled, the business facts kept.
    for table, columns in _tables(con, ("raw",)).items():
        tests, params = [], []
        if "email" in columns and emails:
            tests.append(f"lower(trim(email)) in ({', '.join('?' for _ in emails)})")
            params += sorted(emails)
        if "phone" in columns and phones:
            digits = "replace(replace(replace(replace(replace(phone, ' ', ''), '-', ''), '.', ''), '+', ''), '/', '')"
            tests.append(f"{digits} in ({', '.join('?' for _ in phones)})")
            params += sorted(phones)
        for kind, (column, spelt) in SOURCE_ID_COLUMNS.items():
            if column in columns and by_type.get(kind):
                tests.append(f"{spelt} in ({', '.join('?' for _ in by_type[kind])})")
                params += sorted(by_type[kind])
        personal = [c for c in PERSONAL_COLUMNS if c in columns]
        if not tests or not personal:
            continue
        where = " or ".join(tests)
        n = con.execute(f"select count(*) from {table} where {where}", params).fetchone()[0]
        if n:
            # An erased address reads ERASED, not null: the source's not-null test on a required email column
            # still catches a file that lost its emails, and staging's normalize_email makes it no identity.
            assignments = ", ".join(f"{c} = '{ERASED}'" if c == "email" else f"{c} = null" for c in personal)
            con.execute(f"update {table} set {assignments} where {where}", params)
            report.raw_rows_erased[table] = n

    # 4. Derived rows: by customer id, or by identifier value (the identity graph's observations).
    values = sorted({v for vs in by_type.values() for v in vs})
    for table, columns in _tables(con, DERIVED_SCHEMAS).items():
        tests, params = [], []
        if "customer_id" in columns:
            tests.append(f"customer_id in ({', '.join('?' for _ in customers)})")
            params += customers
        if "identifier_value" in columns and values:
            tests.append(f"identifier_value in ({', '.join('?' for _ in values)})")
            params += values
        if not tests:
            continue
        where = " or ".join(tests)
        n = con.execute(f"select count(*) from {table} where {where}", params).fetchone()[0]
        if n:
            con.execute(f"delete from {table} where {where}", params)
            report.derived_rows_deleted[table] = n

    # 5. Messages not sent yet are not sent.
    report.messages_suppressed = con.execute(f"""
        select count(*) from activation.message_ledger
        where state = 'planned' and customer_id in ({", ".join("?" for _ in customers)})""", customers).fetchone()[0]
    con.execute(f"""update activation.message_ledger set state = 'suppressed', reason = 'forgotten', updated_at = ?
                    where state = 'planned' and customer_id in ({", ".join("?" for _ in customers)})""",
                [now, *customers])

    # 6. The personalization API: a snapshot without them replaces the ones that held them.
    warehouse_file = con.execute("select path from duckdb_databases() where database_name = current_database()"
                                 ).fetchone()[0]
    if warehouse_file:
        report.serving_profiles_removed = forget_from_serving(customers, warehouse=warehouse_file)
    if report.serving_profiles_removed:  # the serving store is this warehouse's: so is the in-app inbox beside it
        inbox = Inbox(create=False)
        report.in_app_messages_deleted = inbox.forget(customers)
        inbox.close()
    return report
