"""What the warehouse now holds, in the marketer's words: people, merges, audiences."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from activations import warehouse


@dataclass
class WarehouseSummary:
    customers: int
    source_records: int  # CRM contacts + shop accounts + guest orders, before resolution
    identifiers: int
    shared_identifiers: int
    quarantined_rows: int
    audiences: dict[str, int] = field(default_factory=dict)

    @property
    def records_merged(self) -> int:
        return self.source_records - self.customers

    def __str__(self) -> str:
        lines = [
            f"customers            {self.customers:>10,}",
            f"source records       {self.source_records:>10,}  ({self.records_merged:,} merged into existing people)",
            f"identifiers          {self.identifiers:>10,}  ({self.shared_identifiers:,} shared, never used to merge)",
            f"quarantined rows     {self.quarantined_rows:>10,}  (see raw.quarantine)",
            "audiences:",
        ]
        lines += [f"  {name:<28} {size:>10,}" for name, size in sorted(self.audiences.items())]
        return "\n".join(lines)


def _scalar(con, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0] or 0) if row else 0


def summarize(path: Path | None = None) -> WarehouseSummary:
    """Read the built warehouse (read-only) and count what matters."""
    with warehouse.connect(path, read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        audiences = {t.split(".", 1)[1]: _scalar(con, f"select count(*) from {t}")
                     for t in sorted(tables) if t.startswith("audiences.aud_")}
        return WarehouseSummary(
            customers=_scalar(con, "select count(*) from marts.customers"),
            source_records=_scalar(con, """
                select count(distinct identifier_type || ':' || identifier_value) from marts.customer_identifiers
                where identifier_type in ('crm_contact_id', 'shop_customer_id', 'guest_order_id')"""),
            identifiers=_scalar(con, "select count(distinct identifier_type || identifier_value) "
                                     "from marts.customer_identifiers"),
            shared_identifiers=_scalar(con, "select count(distinct identifier_type || identifier_value) "
                                            "from marts.customer_identifiers where is_shared"),
            quarantined_rows=_scalar(con, "select count(*) from raw.quarantine") if "raw.quarantine" in tables else 0,
            audiences=audiences,
        )
