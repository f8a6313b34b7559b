"""Score identity resolution against the generator's ground truth (`_truth/person_map.parquet`).

Records are CRM contacts, shop accounts and guest orders. Pairwise precision: of the pairs
of records the warehouse put in one customer, the share that are truly one person.
Pairwise recall: of the pairs that are truly one person, the share the warehouse joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

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
