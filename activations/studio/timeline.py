"""A customer's latest web and app events (marts.events), newest first, with the product's name and
category where the event names one.

A viewer sees a URL's path only: a query string or fragment can carry an email address or a token
(a tracked link, a prefilled form), and a path segment with an `@` in it is hidden too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from activations import warehouse
from activations.studio.privacy import HIDDEN

LATEST = 50


@dataclass
class Timeline:
    total: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def timeline(con, customer_id: str, personal: bool, limit: int = LATEST) -> Timeline | None:
    """The customer's `limit` latest events and how many there are; None without marts.events."""
    if not warehouse.has_table(con, "marts", "events"):
        return None
    products = warehouse.has_table(con, "marts", "products")
    named = "p.product_name, p.category" if products else "null, null"
    joined = "left join marts.products as p on p.product_id = e.product_id" if products else ""
    cursor = con.execute(f"""
        select e.occurred_at, e.event_type, e.platform, e.product_id, {named}, e.quantity, e.url, e.form_name,
               e.lead_source, count(*) over () as total
        from marts.events as e {joined}
        where e.customer_id = ?
        order by e.occurred_at desc, e.event_id desc
        limit ?""", [customer_id, limit])
    columns = [d[0] for d in cursor.description][:-1]
    columns[4:6] = ["product_name", "category"]
    rows = cursor.fetchall()  # one scan of the events: the count rides along (over the customer's rows, before the limit)
    total = rows[0][-1] if rows else 0
    events = [dict(zip(columns, row[:-1], strict=True)) for row in rows]
    if not personal:
        for event in events:
            event["url"] = path_only(event["url"])
    return Timeline(total, events)


def path_only(url: str | None) -> str | None:
    """The URL without its query string, fragment or credentials, any path segment holding an `@` hidden."""
    if not url:
        return url
    parts = urlsplit(url)
    path = "/".join(HIDDEN if "@" in segment else segment for segment in parts.path.split("/"))
    host = parts.netloc.rpartition("@")[2]  # a user name and password in the URL are not shown either
    return f"{parts.scheme}://{host}{path}" if host else path
