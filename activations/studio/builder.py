"""The audience builder's conditions: what a marketer may ask for, each condition checked on its own
(an invalid one says why, next to it), and rendered two ways from one function: as the dbt model's
WHERE clause (refs, the project's `as_of` macro) and as a plain DuckDB query on the warehouse's tables
for the live size estimate. The conditions are combined with AND; those given the same group
letter form one OR group ("either ... or ..."), itself one of the ANDed conditions.

Nothing typed reaches SQL as typed: columns, predictions, event types, categories, audiences and
consents are chosen from lists the project defines (the customers mart's YAML, the prediction tables'
DDL, the events' source YAML, the warehouse's catalogue); values are parsed by the column's type and
written back as typed literals (numbers and dates re-printed, text quoted with each quote spelled
`chr(39)`, so the same literal holds on DuckDB and Spark, whose string escapes differ).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import yaml

from activations import warehouse
from activations.studio.audiences import audience_tables, relation

MAX_CONDITIONS = 20
MAX_LIST = 100  # values in one "in list"
MAX_DAYS = 3650
MAX_TIMES = 10000
MAX_TEXT = 200
GROUPS = ("A", "B", "C", "D")  # OR groups a condition may join ("" = on its own)

# A condition on these would pick out a person, not a segment: the builder leaves them out.
IDENTIFYING = frozenset({"customer_id", "email", "phone", "first_name", "last_name"})
# The columns every audience carries (macros/audiences.sql, audience_contact_columns).
CONTACT_COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name", "country", "timezone",
                   "consent_email", "consent_sms", "consent_ads", "email_marketable")
CONSENTS = ("email_marketable", "consent_email", "consent_sms", "consent_ads", "consent_profiling")
# The scores the weekly models publish (macros/predictions.sql): column -> its table in schema `predictions`.
PREDICTED = {"churn_probability": "customer_propensity", "purchase_probability_30d": "customer_propensity",
             "lead_conversion_probability": "customer_propensity", "probability_alive": "customer_clv",
             "expected_purchases_90d": "customer_clv", "expected_value_365d": "customer_clv"}
# Web and app events (models/staging/_sources.yml, raw events' event_type).
EVENT_TYPES = ("product_view", "page_view", "add_to_cart", "checkout_started", "form_submit", "login", "identify",
               "app_open")

KINDS = ("trait", "predicted", "event", "in_audience", "not_in_audience", "consent")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "is null", "is not null")
OPERATORS = {"text": ("=", "!=", "in", "is null", "is not null"), "number": NUMBER_OPS,
             "date": ("=", "!=", "<", "<=", ">", ">=", "is null", "is not null"),
             "timestamp": ("<", "<=", ">", ">=", "is null", "is not null"),
             "boolean": ("is true", "is false", "is null", "is not null")}
PREDICTED_OPS = NUMBER_OPS[:6]  # a score compared to a number
SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
UNSAFE_TEXT = re.compile(r"[{}\\\x00-\x1f\x7f]")  # Jinja's braces, Spark's escapes, line breaks


class Invalid(ValueError):
    """A condition that cannot be used, and why (shown next to it)."""


def type_kind(data_type: str) -> str:
    """The builder's kind of a dbt data_type: text, number, boolean, date or timestamp."""
    base = data_type.split("(")[0].strip().lower()
    if base in ("integer", "bigint", "int", "smallint", "decimal", "numeric", "double", "float", "real"):
        return "number"
    return base if base in ("boolean", "date", "timestamp") else "text"


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    description: str = ""
    values: tuple[str, ...] = ()  # accepted_values, when the YAML tests them

    @property
    def kind(self) -> str:
        return type_kind(self.data_type)


def customer_columns(project_root: Path) -> dict[str, Column]:
    """The customer 360's columns as its contract declares them (dbt_project/models/marts/_customers.yml)."""
    path = project_root / "dbt_project" / "models" / "marts" / "_customers.yml"
    models = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", [])
    model = next(m for m in models if m.get("name") == "customers")
    found = {}
    for col in model.get("columns", []):
        values: tuple[str, ...] = ()
        for test in col.get("data_tests") or []:
            if isinstance(test, dict) and "accepted_values" in test:
                spec = test["accepted_values"]
                values = tuple(str(v) for v in (spec.get("arguments", spec).get("values") or []))
        found[col["name"]] = Column(col["name"], str(col.get("data_type", "string")),
                                    " ".join(str(col.get("description", "")).split()), values)
    return found


@dataclass(frozen=True)
class Catalog:
    """What conditions may name: the 360's columns, the predictions published, event types, product
    categories, the audiences built, the consents."""

    columns: dict[str, Column]
    predicted: tuple[str, ...] = ()  # those whose table the warehouse has
    categories: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    event_types: tuple[str, ...] = EVENT_TYPES
    consents: tuple[str, ...] = CONSENTS

    @property
    def traits(self) -> dict[str, Column]:
        return {name: col for name, col in self.columns.items() if name not in IDENTIFYING}


def catalog(con, project_root: Path) -> Catalog:
    """The catalog on this warehouse (an open connection) and project."""
    predicted = tuple(name for name, table in PREDICTED.items() if warehouse.has_table(con, "predictions", table))
    categories = ()
    if warehouse.has_table(con, "marts", "products"):
        categories = tuple(r[0] for r in con.execute(
            "select distinct category from marts.products where category is not null order by 1").fetchall())
    return Catalog(customer_columns(project_root), predicted, categories, tuple(audience_tables(con)))


@dataclass(frozen=True)
class Condition:
    """One condition as the form sent it (strings, unchecked): `kind` and `subject` say what it is about
    (a 360 column, a prediction, an event type, an audience, a consent), the rest what it asks."""

    kind: str
    subject: str
    op: str = ""
    value: str = ""
    category: str = ""  # event: the viewed product's category (optional)
    times: str = "1"  # event: at least this many times ...
    days: str = "7"  # ... within the last this many days before as_of
    row: int = 0  # its row in the form, where its problem is shown
    group: str = ""  # an OR group's letter: the conditions sharing it are ORed

    @property
    def choice(self) -> str:
        """The form's one select value for kind and subject, e.g. `trait:rfm_segment`."""
        return f"{self.kind}:{self.subject}"


def from_form(form: Mapping[str, str]) -> list[Condition]:
    """The conditions of a builder form (fields c0_choice, c0_op, c0_value, c0_category, c0_times,
    c0_days, c1_...); rows with nothing chosen are left out."""
    found = []
    for i in range(MAX_CONDITIONS):
        choice = str(form.get(f"c{i}_choice", "") or "").strip()
        if not choice:
            continue
        kind, _, subject = choice.partition(":")
        found.append(Condition(kind, subject, *(str(form.get(f"c{i}_{part}", "") or "").strip()
                                                for part in ("op", "value", "category", "times", "days")),
                               row=i, group=str(form.get(f"c{i}_group", "") or "").strip()))
    return found


@dataclass(frozen=True)
class Dialect:
    """Where the conditions' tables are and how to say "D days before as_of": a dbt model's refs and
    macros, or the warehouse's own tables at a fixed as_of."""

    relation: Callable[[str], str]  # customers, events, products, aud_* -> SQL
    prediction: Callable[[str], str]  # customer_propensity -> SQL
    as_of: str
    days_before_as_of: Callable[[int], str]


DBT = Dialect(relation=lambda name: f"{{{{ ref('{name}') }}}}",
              prediction=lambda table: f"{{{{ source('predictions', '{table}') }}}}",
              as_of="{{ attiva.as_of() }}",
              days_before_as_of=lambda days: f"{{{{ dbt.dateadd('day', -{days}, attiva.as_of()) }}}}")


def duckdb_dialect(as_of: datetime) -> Dialect:
    """The warehouse's tables, as the last build left them, at that build's as_of."""
    now = f"cast('{as_of.replace(tzinfo=None).isoformat(sep=' ')}' as timestamp)"
    marts = {"customers": "marts.customers", "events": "marts.events", "products": "marts.products"}
    return Dialect(relation=lambda name: marts.get(name) or relation(name),
                   prediction=lambda table: f"predictions.{table}", as_of=now,
                   days_before_as_of=lambda days: f"({now} - interval {days} day)")


def text_literal(value: str) -> str:
    """`value` as a string literal both DuckDB and Spark read alike: each quote as chr(39)."""
    if UNSAFE_TEXT.search(value):
        raise Invalid("text may not contain braces, backslashes or line breaks")
    if "'" not in value:
        return f"'{value}'"
    parts = value.split("'")
    pieces = [piece for i, part in enumerate(parts)
              for piece in ([f"'{part}'"] if part else []) + (["chr(39)"] if i < len(parts) - 1 else [])]
    return "(" + " || ".join(pieces) + ")"


def _literal(kind: str, raw: str) -> str:
    raw = raw.strip()
    if not raw:
        raise Invalid("needs a value")
    if kind == "number":
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise Invalid(f"{raw!r} is not a number") from None
        if not number.is_finite():
            raise Invalid(f"{raw!r} is not a number")
        return format(number, "f")
    if kind == "date":
        try:
            return f"cast('{date.fromisoformat(raw).isoformat()}' as date)"
        except ValueError:
            raise Invalid(f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if kind == "timestamp":
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise Invalid(f"{raw!r} is not a date and time (YYYY-MM-DD or YYYY-MM-DD HH:MM, UTC)") from None
        return f"cast('{moment.replace(tzinfo=None).isoformat(sep=' ')}' as timestamp)"
    if len(raw) > MAX_TEXT:
        raise Invalid(f"a value is at most {MAX_TEXT} characters")
    return text_literal(raw)


def _comparison(expr: str, kind: str, op: str, raw: str, allowed: tuple[str, ...]) -> str:
    """`expr op value` with the value parsed as `kind`; Invalid when the operator or value does not fit."""
    if op not in allowed:
        raise Invalid(f"choose an operator ({', '.join(allowed)})" if not op else f"{op!r} does not apply here")
    if op in ("is null", "is not null"):
        return f"{expr} {op}"
    if op in ("is true", "is false"):
        return f"{expr} = {op.split()[1]}"
    if op == "in":
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if not items:
            raise Invalid("needs one or more values, separated by commas")
        if len(items) > MAX_LIST:
            raise Invalid(f"at most {MAX_LIST} values")
        return f"{expr} in ({', '.join(_literal(kind, item) for item in items)})"
    return f"{expr} {SQL_OPS[op]} {_literal(kind, raw)}"


def _whole(raw: str, what: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{what} must be a whole number from {low} to {high}")
    return int(raw)


def render(condition: Condition, catalog: Catalog, dialect: Dialect) -> str:
    """The condition as an SQL predicate on the customers table (aliased `c`); Invalid says why not."""
    kind, subject = condition.kind, condition.subject
    if condition.group not in ("", *GROUPS):
        raise Invalid(f"the OR group is one of {', '.join(GROUPS)}, or none")
    if kind == "trait":
        column = catalog.traits.get(subject)
        if column is None:
            raise Invalid(f"{subject!r} is not a customer 360 trait the builder offers")
        return _comparison(f"c.{subject}", column.kind, condition.op, condition.value, OPERATORS[column.kind])
    if kind == "predicted":
        if subject not in PREDICTED:
            raise Invalid(f"{subject!r} is not a predicted trait")
        if subject not in catalog.predicted:
            raise Invalid(f"no model has published {subject} in this warehouse yet")
        test = _comparison(f"p.{subject}", "number", condition.op, condition.value, PREDICTED_OPS)
        return (f"c.customer_id in (\n      select p.customer_id from {dialect.prediction(PREDICTED[subject])} as p"
                f"\n      where {test}\n  )")
    if kind == "event":
        if subject not in catalog.event_types:
            raise Invalid(f"{subject!r} is not an event type ({', '.join(catalog.event_types)})")
        times = _whole(condition.times or "1", "the number of times", 1, MAX_TIMES)
        days = _whole(condition.days, "the number of days", 1, MAX_DAYS)
        join, where = "", [f"e.event_type = {text_literal(subject)}", "e.customer_id is not null"]
        if condition.category:
            if condition.category not in catalog.categories:
                raise Invalid(f"{condition.category!r} is not a product category ({', '.join(catalog.categories)})")
            join = f"\n      inner join {dialect.relation('products')} as pr on e.product_id = pr.product_id"
            where.append(f"pr.category = {text_literal(condition.category)}")
        where += [f"e.occurred_at > {dialect.days_before_as_of(days)}", f"e.occurred_at <= {dialect.as_of}"]
        having = f"\n      having count(*) >= {times}" if times > 1 else ""
        return (f"c.customer_id in (\n      select e.customer_id\n      from {dialect.relation('events')} as e{join}"
                f"\n      where " + "\n        and ".join(where) + f"\n      group by e.customer_id{having}\n  )")
    if kind in ("in_audience", "not_in_audience"):
        if subject not in catalog.audiences:
            raise Invalid(f"{subject!r} is not an audience of this warehouse")
        negation = "not " if kind == "not_in_audience" else ""
        return (f"{negation}exists (\n      select 1 from {dialect.relation(subject)} as m"
                f" where m.customer_id = c.customer_id\n  )")
    if kind == "consent":
        if subject not in catalog.consents:
            raise Invalid(f"{subject!r} is not a consent ({', '.join(catalog.consents)})")
        return f"c.{subject} = true"
    raise Invalid("choose what the condition is about")


def words(condition: Condition) -> str:
    """The condition in words, for the model's header and the commit message (after validation)."""
    value = condition.value.strip()
    op = condition.op
    said = {"is null": "is empty", "is not null": "is not empty", "is true": "is true", "is false": "is false",
            "in": f"is one of {value}"}.get(op, f"{op} {value}")
    if condition.kind == "trait":
        return f"{condition.subject} {said}"
    if condition.kind == "predicted":
        return f"predicted {condition.subject} {said}"
    if condition.kind == "event":
        category = f" in category {condition.category}" if condition.category else ""
        times = "once" if (condition.times or "1") == "1" else f"{condition.times} times"
        return f"{condition.subject}{category} at least {times} in the {condition.days} days before as_of"
    if condition.kind == "in_audience":
        return f"in {condition.subject}"
    if condition.kind == "not_in_audience":
        return f"not in {condition.subject}"
    return f"{condition.subject} (consent given)"


@dataclass
class Checked:
    """The conditions checked: each one's predicate, or its problem (by position in the form)."""

    conditions: list[Condition]
    predicates: list[tuple[str, str]] = field(default_factory=list)  # (OR group or "", SQL) of the valid ones
    problems: dict[int, str] = field(default_factory=dict)  # the form's row -> why it cannot be used
    error: str | None = None  # why the warehouse could not count them

    @property
    def ok(self) -> bool:
        return bool(self.conditions) and not self.problems

    def where(self) -> str:
        """The WHERE clause: the conditions ANDed, each OR group's in parentheses where it first appears."""
        return "\n  and ".join(_grouped(self.predicates, lambda members: "(\n    " + "\n    or ".join(
            sql.replace("\n", "\n  ") for sql in members) + "\n  )")) or "true"


def check(conditions: list[Condition], catalog: Catalog, dialect: Dialect) -> Checked:
    checked = Checked(conditions)
    for condition in conditions:
        try:
            checked.predicates.append((condition.group, render(condition, catalog, dialect)))
        except Invalid as exc:
            checked.problems[condition.row] = str(exc)
    return checked


def described(conditions: list[Condition]) -> list[str]:
    """The conditions in words, an OR group as one "either ..., or ..." (after validation)."""
    return _grouped([(c.group, words(c)) for c in conditions], lambda members: "either " + ", or ".join(members))


def _grouped(items: list[tuple[str, str]], join: Callable[[list[str]], str]) -> list[str]:
    """`items` (group, text) in order, each group's texts joined by `join` where the group first
    appears (a group of one stays as it is)."""
    members: dict[str, list[str]] = {}
    for group, text in items:
        if group:
            members.setdefault(group, []).append(text)
    found, done = [], set()
    for group, text in items:
        if not group:
            found.append(text)
        elif group not in done:
            done.add(group)
            found.append(members[group][0] if len(members[group]) == 1 else join(members[group]))
    return found


def trait_columns(conditions: list[Condition], catalog: Catalog) -> list[Column]:
    """The 360 columns the conditions test, beyond the contact columns: the model carries them too."""
    names = dict.fromkeys(c.subject for c in conditions if c.kind == "trait" and c.subject not in CONTACT_COLUMNS)
    return [catalog.columns[name] for name in names if name in catalog.columns]


def estimate(con, conditions: list[Condition], catalog: Catalog, as_of: datetime) -> tuple[int | None, Checked]:
    """How many customers the valid conditions select now (one query); None when none is valid."""
    checked = check(conditions, catalog, duckdb_dialect(as_of))
    if not checked.predicates:
        return None, checked
    if not warehouse.has_table(con, "marts", "customers"):
        checked.error = "no customers table in the warehouse yet: build it (`attiva build`)"
        return None, checked
    sql = f"select count(*) from marts.customers as c\nwhere {checked.where()}"
    try:
        return con.execute(sql).fetchone()[0], checked
    except duckdb.Error as exc:  # a warehouse older than the project's YAML (a column not built yet)
        checked.error = f"the warehouse cannot count this yet ({str(exc).splitlines()[0]}): rebuild it"
        return None, checked


def model_sql(name: str, description: str, conditions: list[Condition], catalog: Catalog, author: str,
              when: datetime) -> str:
    """The dbt model: the project's style (contact columns macro, refs, as_of), a header saying who built it."""
    checked = check(conditions, catalog, DBT)
    if not checked.ok:
        raise Invalid("; ".join(f"condition {i + 1}: {p}" for i, p in checked.problems.items())
                      or "add a condition first")
    extra = "".join(f",\n    c.{col.name}" for col in trait_columns(conditions, catalog))
    header = [f"-- {description}", f"-- Built in the console (attiva studio) by {author} on "
              f"{when.strftime('%Y-%m-%d %H:%M UTC')}, for customers matching all of:"]
    header += [f"--   - {said}" for said in described(conditions)]
    return ("\n".join(header) + "\nselect\n    {{ attiva.audience_contact_columns() }}" + extra +
            "\nfrom {{ ref('customers') }} as c\nwhere " + checked.where() + "\n")
