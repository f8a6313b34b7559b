"""What each customer had done by a cut-off (the features) and did in the days after it (the labels).

Everything is read from five views, so the same SQL runs on the warehouse (`use_warehouse`:
views over the marts) and on frames a test or benchmark hands in (`use_frames`):

  propensity_people   customer_id, first_seen_at, became_lead_at, became_customer_at, has_company, senior_title
  propensity_orders   customer_id, ordered_at, amount                       (completed orders)
  propensity_events   customer_id, occurred_at, event_type, form_name       (site and app)
  propensity_emails   customer_id, occurred_at, event_type                  (opens, clicks, unsubscribes...)
  propensity_consent  customer_id, channel, status, recorded_at             (consent records)

A feature counts only what happened at or before the cut-off, a label only what happened in
(cut-off, cut-off + horizon]: a model trained at one cut-off and checked at the next never sees
its answers. Company and job title are today's (the warehouse keeps no history of them).
The rule-based scores (churn_risk, lead_score: docs/scores.md) are recomputed at the same
cut-off, so the model and the rules are judged on the same customers and the same days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import yaml

from activations import settings

PEOPLE, ORDERS, EVENTS, EMAILS, CONSENT = (
    "propensity_people", "propensity_orders", "propensity_events", "propensity_emails", "propensity_consent")

COLUMNS = {
    PEOPLE: {"customer_id": "varchar", "first_seen_at": "timestamp", "became_lead_at": "timestamp",
             "became_customer_at": "timestamp", "has_company": "boolean", "senior_title": "boolean"},
    ORDERS: {"customer_id": "varchar", "ordered_at": "timestamp", "amount": "double"},
    EVENTS: {"customer_id": "varchar", "occurred_at": "timestamp", "event_type": "varchar", "form_name": "varchar"},
    EMAILS: {"customer_id": "varchar", "occurred_at": "timestamp", "event_type": "varchar"},
    CONSENT: {"customer_id": "varchar", "channel": "varchar", "status": "varchar", "recorded_at": "timestamp"},
}

SENIOR_TITLE = "(ceo|cto|cmo|cfo|founder|owner|director|head|manager|buyer|responsabile|titolare)"  # as the 360

WAREHOUSE_VIEWS = {
    PEOPLE: f"""
        select customer_id, first_seen_at, became_lead_at, became_customer_at, company is not null as has_company,
               regexp_matches(lower(coalesce(job_title, '')), '{SENIOR_TITLE}') as senior_title
        from marts.customers""",
    ORDERS: """
        select customer_id, ordered_at, cast(total_amount as double) as amount
        from marts.orders where is_completed and customer_id is not null""",
    EVENTS: "select customer_id, occurred_at, event_type, form_name from marts.events where customer_id is not null",
    EMAILS: """
        select distinct i.customer_id, e.engagement_id, e.occurred_at,
               case when e.event_type = 'bounce' and e.bounce_type = 'hard' then 'hard_bounce' else e.event_type end
                   as event_type
        from staging.stg_email__engagement as e
        inner join marts.customer_identifiers as i on i.identifier_type = 'email' and i.identifier_value = e.email""",
    # One equi-join per identifier, not one join on "email or phone or shop id": DuckDB cannot hash an OR of
    # equalities and compared every record with every identifier (43 s for the demo's 84k records, per cut-off).
    CONSENT: "select distinct customer_id, consent_id, channel, status, recorded_at from (" + " union all ".join(
        f"""select i.customer_id, r.consent_id, r.channel, r.status, r.recorded_at
            from staging.stg_consent__records as r
            inner join marts.customer_identifiers as i
              on i.identifier_type = '{kind}' and i.identifier_value = r.{column}"""
        for kind, column in (("email", "email"), ("phone", "phone"), ("shop_customer_id", "shop_customer_id"))) + ")",
}

# The model's inputs, in order. Days are whole days before the cut-off; a missing one (never
# ordered, never seen on the site) is null, which gradient boosting treats as its own branch.
FEATURES = (
    "orders_count", "revenue", "avg_order_value", "days_since_last_order", "days_since_first_order",
    "avg_days_between_orders", "orders_90d", "revenue_90d", "orders_365d", "days_known",
    "events_30d", "product_views_30d", "form_submits", "contact_sales_forms", "days_since_last_event",
    "email_opens_90d", "email_clicks_90d", "email_unsubscribed", "email_hard_bounced", "consent_email",
    "has_company", "senior_title", "is_open_lead", "days_as_lead",
)
CHURN_RISK_ORDER = {"low": 0, "medium": 1, "high": 2}

FEATURES_SQL = f"""
with people as (
    select * from {PEOPLE} where coalesce(first_seen_at, $cutoff) <= $cutoff
),
orders as (
    select customer_id, count(*) as orders_count, sum(amount) as revenue,
           min(ordered_at) as first_order_at, max(ordered_at) as last_order_at,
           count(*) filter (where ordered_at > $cutoff - interval 90 day) as orders_90d,
           coalesce(sum(amount) filter (where ordered_at > $cutoff - interval 90 day), 0) as revenue_90d,
           count(*) filter (where ordered_at > $cutoff - interval 365 day) as orders_365d
    from {ORDERS} where ordered_at <= $cutoff group by customer_id
),
events as (
    select customer_id, max(occurred_at) as last_event_at,
           count(*) filter (where occurred_at >= $cutoff - interval 30 day) as events_30d,
           count(*) filter (where event_type = 'product_view' and occurred_at >= $cutoff - interval 30 day)
               as product_views_30d,
           count(*) filter (where event_type = 'form_submit') as form_submits,
           count(*) filter (where event_type = 'form_submit' and form_name = 'contact_sales') as contact_sales_forms
    from {EVENTS} where occurred_at <= $cutoff group by customer_id
),
emails as (
    select customer_id,
           count(*) filter (where event_type = 'open' and occurred_at >= $cutoff - interval 90 day) as email_opens_90d,
           count(*) filter (where event_type = 'click' and occurred_at >= $cutoff - interval 90 day) as email_clicks_90d,
           bool_or(event_type in ('unsubscribe', 'complaint')) as email_unsubscribed,
           bool_or(event_type = 'hard_bounce') as email_hard_bounced
    from {EMAILS} where occurred_at <= $cutoff group by customer_id
),
-- The latest email consent by the cut-off; an unsubscribe or complaint revokes it (as the 360).
consent as (
    select customer_id, arg_max(status = 'granted', recorded_at) as consent_email
    from (select customer_id, status, recorded_at from {CONSENT} where channel = 'email'
          union all
          select customer_id, 'revoked', occurred_at from {EMAILS} where event_type in ('unsubscribe', 'complaint'))
    where recorded_at <= $cutoff group by customer_id
)
select
    p.customer_id,
    coalesce(o.orders_count, 0) as orders_count,
    coalesce(o.revenue, 0) as revenue,
    o.revenue / o.orders_count as avg_order_value,
    date_diff('day', o.last_order_at, $cutoff) as days_since_last_order,
    date_diff('day', o.first_order_at, $cutoff) as days_since_first_order,
    case when o.orders_count > 1
         then cast(date_diff('day', o.first_order_at, o.last_order_at) as double) / (o.orders_count - 1)
    end as avg_days_between_orders,
    coalesce(o.orders_90d, 0) as orders_90d,
    coalesce(o.revenue_90d, 0) as revenue_90d,
    coalesce(o.orders_365d, 0) as orders_365d,
    date_diff('day', least(p.first_seen_at, o.first_order_at), $cutoff) as days_known,
    coalesce(e.events_30d, 0) as events_30d,
    coalesce(e.product_views_30d, 0) as product_views_30d,
    coalesce(e.form_submits, 0) as form_submits,
    coalesce(e.contact_sales_forms, 0) as contact_sales_forms,
    date_diff('day', e.last_event_at, $cutoff) as days_since_last_event,
    coalesce(m.email_opens_90d, 0) as email_opens_90d,
    coalesce(m.email_clicks_90d, 0) as email_clicks_90d,
    coalesce(m.email_unsubscribed, false) as email_unsubscribed,
    coalesce(m.email_hard_bounced, false) as email_hard_bounced,
    c.consent_email,
    coalesce(p.has_company, false) as has_company,
    coalesce(p.senior_title, false) as senior_title,
    -- a lead who had not bought by the cut-off: whom the lead model scores
    p.became_lead_at <= $cutoff and o.orders_count is null
        and coalesce(p.became_customer_at > $cutoff, true) as is_open_lead,
    date_diff('day', p.became_lead_at, $cutoff) as days_as_lead
from people as p
left join orders as o on p.customer_id = o.customer_id
left join events as e on p.customer_id = e.customer_id
left join emails as m on p.customer_id = m.customer_id
left join consent as c on p.customer_id = c.customer_id
order by p.customer_id
"""

# Whether each customer known at the cut-off ordered in (cut-off, cut-off + horizon], and whether a
# lead became a customer then (a CRM date, else a first completed order).
LABELS_SQL = f"""
with firsts as (
    select customer_id, min(ordered_at) as first_order_at,
           bool_or(ordered_at > $cutoff and ordered_at <= $until) as ordered
    from {ORDERS} group by customer_id
),
joined as (
    select p.customer_id, coalesce(f.ordered, false) as ordered,
           least(p.became_customer_at, f.first_order_at) as customer_since
    from {PEOPLE} as p
    left join firsts as f on p.customer_id = f.customer_id
    where coalesce(p.first_seen_at, $cutoff) <= $cutoff
)
select customer_id, ordered, coalesce(customer_since > $cutoff and customer_since <= $until, false) as converted
from joined
order by customer_id
"""


def use_warehouse(con) -> None:
    """Point the five views at the warehouse's marts (temporary: nothing is written to the file)."""
    for name, sql in WAREHOUSE_VIEWS.items():
        con.execute(f"create or replace temp view {name} as {sql}")


def use_frames(con, **frames) -> None:
    """Point the views at frames (pandas, polars or Arrow) named as the views without the prefix
    (people=..., orders=...); a view with no frame is empty, a column a frame lacks is null."""
    for name, columns in COLUMNS.items():
        frame = frames.pop(name.removeprefix("propensity_"), None)
        if frame is None:
            empty = ", ".join(f"cast(null as {kind}) as {column}" for column, kind in columns.items())
            con.execute(f"create or replace temp view {name} as select {empty} where false")
        else:
            con.register(f"{name}_frame", frame)
            present = set(con.sql(f"select * from {name}_frame").columns)
            casts = ", ".join(f"cast({column if column in present else 'null'} as {kind}) as {column}"
                              for column, kind in columns.items())
            con.execute(f"create or replace temp view {name} as select {casts} from {name}_frame")
    if frames:
        raise TypeError(f"no view for {sorted(frames)}; expected {[n.removeprefix('propensity_') for n in COLUMNS]}")


def _naive(moment: datetime) -> datetime:
    """The warehouse's timestamps are naive UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def features(con, cutoff: datetime) -> dict[str, np.ndarray]:
    """One array per column (customer_id, FEATURES, and the rule scores churn_risk and lead_score) for
    every customer known at the cut-off, sorted by customer_id."""
    columns = con.execute(FEATURES_SQL, {"cutoff": _naive(cutoff)}).fetchnumpy()
    columns = {name: _plain(values) for name, values in columns.items()}
    columns["churn_risk"] = churn_risk(columns["days_since_last_order"], columns["avg_days_between_orders"])
    columns["lead_score"] = lead_score(columns)
    return columns


def labels(con, cutoff: datetime, horizon_days: int) -> dict[str, np.ndarray]:
    """customer_id, ordered and converted in (cut-off, cut-off + horizon] for every customer known at the
    cut-off, in the order of `features`."""
    start = _naive(cutoff)
    columns = con.execute(LABELS_SQL, {"cutoff": start, "until": start + timedelta(days=horizon_days)}).fetchnumpy()
    return {name: _plain(values) for name, values in columns.items()}


def _plain(values) -> np.ndarray:
    """A masked array (DuckDB's nulls) as floats with NaN, booleans as 0/1; strings as they are."""
    if values.dtype.kind in "OUS":
        return np.asarray(values)
    filled = np.ma.filled(np.ma.asarray(values).astype(float), np.nan)
    return filled


def churn_risk(days_since_last_order: np.ndarray, avg_days_between_orders: np.ndarray) -> np.ndarray:
    """The 360's rule (docs/scores.md) as an ordinal, 0 low, 1 medium, 2 high; NaN for non-buyers.
    Repeat buyers against 1.5 and 3 times their own rhythm, the others against 90 and 180 days."""
    days, gap = days_since_last_order, avg_days_between_orders
    has_rhythm = np.nan_to_num(gap, nan=0.0) > 0
    low_after = np.where(has_rhythm, 1.5 * np.nan_to_num(gap), 90.0)
    high_after = np.where(has_rhythm, 3 * np.nan_to_num(gap), 180.0)
    risk = np.where(days <= low_after, 0.0, np.where(days <= high_after, 1.0, 2.0))
    return np.where(np.isnan(days), np.nan, risk)


@cache
def lead_score_weights() -> dict[str, float]:
    """The rule-based lead score's points per signal, from dbt_project.yml (var lead_score_weights)."""
    config = yaml.safe_load((settings.dbt_project_dir() / "dbt_project.yml").read_text())
    return config["vars"]["lead_score_weights"]


def lead_score(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The 360's lead score (0-100) from the same signals at the cut-off."""
    w = lead_score_weights()
    points = (w["form_submit"] * columns["form_submits"] + w["contact_sales_form"] * columns["contact_sales_forms"]
              + w["email_open"] * columns["email_opens_90d"] + w["email_click"] * columns["email_clicks_90d"]
              + w["product_view"] * columns["product_views_30d"] + w["has_company"] * columns["has_company"]
              + w["senior_title"] * columns["senior_title"])
    return np.minimum(100.0, points)
