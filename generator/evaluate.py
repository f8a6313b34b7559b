"""Score identity resolution against the generator's ground truth (`_truth/person_map.parquet`).

Records are CRM contacts, shop accounts and guest orders. Pairwise precision: of the pairs
of records the warehouse put in one customer, the share that are truly one person.
Pairwise recall: of the pairs that are truly one person, the share the warehouse joined.
`explain_identity` says why: which kinds of identity mess the people left split carry, and
which look-alikes (family, namesake, role mailbox) the false merges joined.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

SOURCE_TO_IDENTIFIER = {
    "crm_contacts": "crm_contact_id",
    "shop_customers": "shop_customer_id",
    "shop_orders": "guest_order_id",
}


@dataclass(frozen=True)
class IdentityScore:
    records: int
    true_people: int
    customers: int
    precision: float
    recall: float
    unresolved_records: int  # records that belong to no customer (e.g. only placeholders)

    def __str__(self) -> str:
        return (f"identity: {self.records:,} records of {self.true_people:,} people -> {self.customers:,} customers; "
                f"pairwise precision {self.precision:.4f}, recall {self.recall:.4f}; "
                f"{self.unresolved_records:,} records resolved to no customer")


def score_identity(warehouse: Path, truth_dir: Path) -> IdentityScore:
    """Compare marts.customer_identifiers with the truth; all set work in DuckDB."""
    con = _labelled(warehouse, truth_dir)
    try:
        records, people, customers, unresolved = con.execute("""
            select count(distinct record), count(distinct person_id), count(distinct customer_id),
                   count(distinct case when customer_id is null then record end)
            from labelled""").fetchone()
        # pairs counted per group: n*(n-1)/2, no pair enumeration needed
        both, predicted, actual = con.execute("""
            with resolved as (select * from labelled where customer_id is not null),
            pairs as (
                select
                    (select sum(n * (n - 1) / 2) from (select count(*) n from resolved group by person_id, customer_id)),
                    (select sum(n * (n - 1) / 2) from (select count(*) n from resolved group by customer_id)),
                    (select sum(n * (n - 1) / 2) from (select count(*) n from labelled group by person_id))
            )
            select * from pairs""").fetchone()
    finally:
        con.close()
    return IdentityScore(records=records, true_people=people, customers=customers,
                         precision=float(both or 0) / float(predicted or 1), recall=float(both or 0) / float(actual or 1),
                         unresolved_records=unresolved)


@dataclass(frozen=True)
class IdentityBreakdown:
    """Why people are split and why different people are merged, by kind of mess and look-alike."""

    split_people: int  # people whose records are in more than one customer (or in none)
    misses: pl.DataFrame  # kind, records (carrying it), left_apart (not in their person's main customer), people_split
    false_merges: pl.DataFrame  # cause, person_pairs (merged though different), record_pairs
    # per source, the left-apart records by what they share with another record of their person
    # (EVIDENCE, strongest first): what a resolver could go on
    evidence: pl.DataFrame | None = None

    def __str__(self) -> str:
        lines = [f"people split: {self.split_people:,}", "  misses by kind of mess      records  left apart  people split"]
        lines += [f"    {k:<24} {r:>9,} {a:>11,} {p:>13,}" for k, r, a, p in self.misses.iter_rows()]
        if self.evidence is not None:
            lines.append("  left-apart records by what they share with another record of their person (strongest)")
            lines.append("    " + f"{'source':<16}" + "".join(f"{label:>15}" for label in EVIDENCE))
            lines += ["    " + f"{row[0]:<16}" + "".join(f"{n:>15,}" for n in row[1:]) for row in self.evidence.iter_rows()]
        lines.append("  false merges by cause       person pairs  record pairs")
        lines += [f"    {c:<24} {p:>12,} {r:>13,}" for c, p, r in self.false_merges.iter_rows()]
        if not self.false_merges.height:
            lines.append("    (none)")
        return "\n".join(lines)


def explain_identity(warehouse: Path, truth_dir: Path) -> IdentityBreakdown:
    """Misses by the kind of mess on the records left apart; false merges by the look-alike that caused them.

    A person's main customer is the one holding most of their records (on a tie, the fewest messy
    ones); the person's other records are left apart, and the kinds they carry are why the person
    is split ("no recorded mess" when they carry none: a work email in the CRM and a personal one in
    the shop, say). A false merge is a pair of different people in one customer; its cause is how the
    truth says they look alike (family, namesake, role_mailbox), else "other".
    """
    con = _labelled(warehouse, truth_dir)
    try:
        con.execute(f"create temp table mess as {_truth_table(truth_dir, 'record_mess', MESS_COLUMNS)}")
        con.execute(f"create temp table lookalikes as {_truth_table(truth_dir, 'lookalikes', LOOKALIKE_COLUMNS)}")
        con.execute("""
            create temp table placed as
            with per_customer as (
                select l.person_id, l.customer_id, count(*) as n,
                       count(*) filter (where l.record in (select source || ':' || record_id from mess)) as messy
                from labelled as l where l.customer_id is not null group by all
            ),
            main as (
                select person_id, customer_id from per_customer
                qualify row_number() over (partition by person_id order by n desc, messy, customer_id) = 1
            )
            select l.*, m.customer_id is null as left_apart
            from labelled as l left join main as m on l.person_id = m.person_id and l.customer_id = m.customer_id
        """)
        split_people = con.execute("select count(distinct person_id) from placed where left_apart").fetchall()[0][0]
        misses = _frame(con, """
            with kinds as (
                select p.person_id, p.record, p.left_apart, coalesce(m.kind, 'no recorded mess') as kind
                from placed as p left join mess as m on p.record = m.source || ':' || m.record_id
            )
            select kind, count(distinct record) as records,
                   count(distinct record) filter (where left_apart) as left_apart,
                   count(distinct person_id) filter (where left_apart) as people_split
            from kinds group by kind order by people_split desc, kind""")
        false_merges = _frame(con, """
            with people as (
                select customer_id, person_id, count(*) as n from labelled
                where customer_id is not null group by all
            ),
            pairs as (
                select a.person_id as a, b.person_id as b, a.n * b.n as record_pairs
                from people as a inner join people as b on a.customer_id = b.customer_id and a.person_id < b.person_id
            )
            select coalesce((select min(kind) from lookalikes as k where k.person_id = p.a and k.other_person_id = p.b),
                            'other') as cause,
                   count(*) as person_pairs, sum(record_pairs)::bigint as record_pairs
            from pairs as p group by cause order by record_pairs desc""")
        evidence = _frame(con, EVIDENCE_QUERY)
    finally:
        con.close()
    return IdentityBreakdown(split_people=split_people, misses=misses, false_merges=false_merges, evidence=evidence)


# What a left-apart record shares with another record of the same person, strongest first: the
# same email or phone (the rules set it aside: shared, or two names), a birth date beside the
# surname, an email two edits away, the names only (first and last, either order), or not even
# those (a guest order with another email).
EVIDENCE = ("email", "phone", "birth date", "near email", "same names", "less")
# Each record's fields as staging has them; {records}: a table of records with person_id and customer_id.
FIELDS_QUERY = """
    select p.*, split_part(p.record, ':', 1) as source,
           coalesce(c.email, s.email, o.email) as email, coalesce(c.phone, s.phone, o.phone) as phone,
           lower(coalesce(c.first_name, s.first_name, o.shipping_first_name)) as first_name,
           lower(coalesce(c.last_name, s.last_name, o.shipping_last_name)) as last_name,
           coalesce(c.birth_date, s.birth_date) as birth_date,
           lower(coalesce(c.city, s.city, o.shipping_city)) as city
    from {records} as p
    left join wh.staging.stg_crm__contacts as c
      on p.record = 'crm_contacts:' || c.contact_id and c.is_latest_version
    left join wh.staging.stg_shop__customers as s
      on p.record = 'shop_customers:' || s.shop_customer_id and s.is_latest_version
    left join wh.staging.stg_shop__orders as o on p.record = 'shop_orders:' || o.order_id
"""
EVIDENCE_QUERY = f"""
    with fields as ({FIELDS_QUERY.format(records="placed")}),
    shared as (
        select a.source, a.record,
               coalesce(bool_or(a.email = b.email), false) as email,
               coalesce(bool_or(a.phone = b.phone), false) as phone,
               coalesce(bool_or(a.birth_date = b.birth_date and a.last_name in (b.last_name, b.first_name)), false)
                   as birth_date,
               coalesce(bool_or(a.email <> b.email and levenshtein(a.email, b.email) <= 2), false) as near_email,
               coalesce(bool_or(a.last_name in (b.last_name, b.first_name)
                                and a.first_name in (b.first_name, b.last_name)), false) as names
        from fields as a
        inner join fields as b on a.person_id = b.person_id and a.record <> b.record
        where a.left_apart
        group by a.source, a.record
    ),
    strongest as (
        select source, case when email then 'email' when phone then 'phone' when birth_date then 'birth date'
                            when near_email then 'near email' when names then 'same names' else 'less' end as kind
        from shared
    )
    select source,
""" + ",\n".join(f"count(*) filter (where kind = '{k}') as \"{k}\"" for k in EVIDENCE) + """
    from strongest group by source order by source
"""


@dataclass(frozen=True)
class RecallReach:
    """How far recall can go: what it would be if, beyond the warehouse's merges, every pair of one
    person's records were joined that shares some evidence; and the price of joining on names."""

    recall: float  # as built
    with_evidence: float  # + every pair sharing an email, phone or birth date, or emails two edits apart
    with_names: float  # + every pair under the same names (either order) in the same city
    namesake_pairs: int  # pairs under the same names in the same city, in two customers, of two people
    same_person_pairs: int  # ... of one person

    def __str__(self) -> str:
        share = self.same_person_pairs / ((self.namesake_pairs + self.same_person_pairs) or 1)
        return (f"recall within reach: {self.with_evidence:.4f} if every pair of one person's records sharing an "
                f"email, phone or birth date, or emails two edits apart, were joined (as built: {self.recall:.4f}, "
                f"{self.recall / (self.with_evidence or 1):.1%} of the pairs within reach); {self.with_names:.4f} "
                f"if every pair under one name in one city were joined as well, though only "
                f"{self.same_person_pairs:,} of the {self.namesake_pairs + self.same_person_pairs:,} such pairs "
                f"left in two customers are one person ({share:.1%}), the rest namesakes")


def recall_within_reach(warehouse: Path, truth_dir: Path) -> RecallReach:
    """Recall as built, and as it would be with every pair of one person's records joined that shares
    some evidence (an oracle: it reads the truth to pick the pairs), then also every pair that shares
    only names and a city; and how many of the pairs of that last kind the warehouse left apart are
    one person, how many namesakes."""
    con = _labelled(warehouse, truth_dir)
    try:
        con.execute(f"create temp table fields as {FIELDS_QUERY.format(records='labelled')}")
        con.execute("""
            create temp table same_person as
            select a.record as a, b.record as b,
                   a.email = b.email or a.phone = b.phone or a.birth_date = b.birth_date
                       or levenshtein(a.email, b.email) <= 2 as evidence,
                   a.city = b.city and least(a.first_name, a.last_name) = least(b.first_name, b.last_name)
                       and greatest(a.first_name, a.last_name) = greatest(b.first_name, b.last_name) as names
            from fields as a inner join fields as b on a.person_id = b.person_id and a.record < b.record""")
        records = con.execute("select record, person_id, customer_id from fields").fetchall()
        joined = con.execute("""
            select a.record, b.record from fields as a inner join fields as b
            on a.customer_id = b.customer_id and a.person_id = b.person_id and a.record < b.record""").fetchall()
        evidence = con.execute("select a, b from same_person where evidence").fetchall()
        names = con.execute("select a, b from same_person where names").fetchall()
        same, namesakes = con.execute("""
            select count(*) filter (where a.person_id = b.person_id), count(*) filter (where a.person_id <> b.person_id)
            from fields as a inner join fields as b
              on a.record < b.record and a.city = b.city
              and least(a.first_name, a.last_name) = least(b.first_name, b.last_name)
              and greatest(a.first_name, a.last_name) = greatest(b.first_name, b.last_name)
            where a.customer_id is distinct from b.customer_id""").fetchone()
    finally:
        con.close()
    people = {record: person for record, person, _ in records}
    return RecallReach(recall=_recall(people, joined), with_evidence=_recall(people, joined + evidence),
                       with_names=_recall(people, joined + evidence + names),
                       namesake_pairs=namesakes, same_person_pairs=same)


def _recall(people: dict[str, int], pairs: list[tuple[str, str]]) -> float:
    """Pairwise recall of the groups the pairs join (each pair is of one person's records)."""
    group = {record: record for record in people}

    def root(record: str) -> str:
        while group[record] != record:
            group[record] = group[group[record]]
            record = group[record]
        return record

    for a, b in pairs:
        group[root(a)] = root(b)
    joined = Counter(root(record) for record in people)
    actual = Counter(people.values())
    pairs_of = sum(n * (n - 1) // 2 for n in joined.values())
    return pairs_of / (sum(n * (n - 1) // 2 for n in actual.values()) or 1)


MESS_COLUMNS = "person_id bigint, source varchar, record_id varchar, kind varchar"
LOOKALIKE_COLUMNS = "person_id bigint, other_person_id bigint, kind varchar"


def _frame(con: duckdb.DuckDBPyConnection, query: str) -> pl.DataFrame:
    rows = con.execute(query).fetchall()
    return pl.DataFrame(rows, schema=[d[0] for d in con.description], orient="row")


def _truth_table(truth_dir: Path, name: str, columns: str) -> str:
    """A truth file as a query; an empty one of the same columns when an older generator did not write it."""
    path = truth_dir / f"{name}.parquet"
    if path.exists():
        return f"select * from read_parquet('{path}')"
    return f"select * from (select {', '.join(f'null::{c.split()[1]} as {c.split()[0]}' for c in columns.split(', '))}) where false"


def _labelled(warehouse: Path, truth_dir: Path) -> duckdb.DuckDBPyConnection:
    """A connection holding `labelled`: each truth record with its person and the customer it resolved to."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        mapping = " union all ".join(f"select '{s}' as source, '{i}' as identifier_type" for s, i in
                                     SOURCE_TO_IDENTIFIER.items())
        con.execute(f"""
            create temp table labelled as
            select t.person_id, t.source || ':' || t.record_id as record, ci.customer_id
            from read_parquet('{truth_dir / "person_map.parquet"}') as t
            inner join ({mapping}) as m on t.source = m.source
            left join (select distinct customer_id, identifier_type, identifier_value
                       from wh.marts.customer_identifiers where not is_shared) as ci
              on ci.identifier_type = m.identifier_type and ci.identifier_value = t.record_id
        """)
    except Exception:
        con.close()
        raise
    return con
