"""What the marketer's report shows, read from the warehouse: the measurement models (schema
`measurement`) and the engine's run log. Plain rows (lists of dicts), no HTML here.

A relation that does not exist yet (a warehouse built before measurement, or never synced)
reads as no rows: the report then says "no data yet" for that section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Rows = list[dict[str, Any]]


@dataclass
class ReportData:
    campaigns: Rows = field(default_factory=list)  # measurement.campaign_performance
    uplift: Rows = field(default_factory=list)  # measurement.campaign_uplift
    variants: Rows = field(default_factory=list)  # measurement.campaign_variants (A/B tests)
    audience_sizes: Rows = field(default_factory=list)  # sync_name, destination, day, audience_rows
    funnel_totals: Rows = field(default_factory=list)  # stage, people, came_from_previous (every source and month)
    funnel: Rows = field(default_factory=list)  # measurement.lead_funnel aggregated per lead source
    sync_health: Rows = field(default_factory=list)  # latest run per sync, from measurement.sync_health
    propensity_models: Rows = field(default_factory=list)  # the latest training per model (predictions schema)
    clv_model: Rows = field(default_factory=list)  # the latest lifetime-value training, and when one last published
    clv_values: Rows = field(default_factory=list)  # scored buyers per band of predicted 365-day value
    allocations: Rows = field(default_factory=list)  # campaign, step, day, variant, messages: A/B steps' choices
    send_times: Rows = field(default_factory=list)  # timed_by, delivered, opened: what set each sent message's hour
    send_time_tests: Rows = field(default_factory=list)  # campaign, control, delivered, opened (send_time_control)
    listening: Rows = field(default_factory=list)  # marts.listening_brand_weekly, topic 'all': week, brand, ...
    social: Rows = field(default_factory=list)  # marts.social_engagement_weekly per week and kind, every platform
    journeys: Rows = field(default_factory=list)  # measurement.journey_steps of campaigns with two steps or more
    sync_runs: int = 0
    generated_at: datetime | None = None
    missing: list[str] = field(default_factory=list)  # relations the warehouse does not have yet


def _exists(con, schema: str, name: str) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                            [schema, name]).fetchone()[0])


def _columns(con, schema: str, name: str) -> set[str]:
    return {r[0] for r in con.execute("select column_name from information_schema.columns "
                                      "where table_schema = ? and table_name = ?", [schema, name]).fetchall()}


def _rows(con, sql: str, params: list[Any] | None = None) -> Rows:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


CAMPAIGN_MODELS = ("campaign_performance", "campaign_uplift", "campaign_variants")


def campaign_measurement(con, campaign: str | None = None, models: tuple[str, ...] = CAMPAIGN_MODELS,
                         schema: str = "measurement") -> ReportData:
    """Only the campaign sections' rows (performance, uplift, A/B tests), of every campaign or of one:
    what the console's campaign pages show with this report's own sections. `models`: only those of
    CAMPAIGN_MODELS a page shows (each is a view over the whole ledger, read in seconds at 1M customers);
    `schema`: "measured" reads the copy the last report took (report/snapshots.py) instead of the views."""
    data = ReportData()
    present = {("measurement", n) for n in models if _exists(con, schema, n)}
    data.missing = sorted(f"{schema}.{n}" for n in models if ("measurement", n) not in present)
    _campaign_measurement(con, data, present, campaign, schema)
    return data


def _campaign_measurement(con, data: ReportData, present: set[tuple[str, str]], campaign: str | None = None,
                          schema: str = "measurement") -> None:
    only, params = ("and campaign = ?", [campaign]) if campaign else ("", [])
    if ("measurement", "campaign_performance") in present:
        data.campaigns = _rows(con, f"""
            select campaign, step, variant, sent, held_out, delivered, opened, clicked, bounced, unsubscribed,
                   complained, converted, orders, revenue, delivery_rate, open_rate, click_rate, unsubscribe_rate,
                   conversion_rate, revenue_per_recipient, last_sent_at
            from {schema}.campaign_performance
            where (sent > 0 or held_out > 0) {only}
            order by campaign, step, variant""", params)
    if ("measurement", "campaign_uplift") in present:
        data.uplift = _rows(con, f"select * from {schema}.campaign_uplift where true {only} order by campaign",
                            params)
    if ("measurement", "campaign_variants") in present:
        data.variants = _rows(con, f"select * from {schema}.campaign_variants where true {only} "
                                   "order by campaign, step, variant", params)


def load(con, generated_at: datetime | None = None, campaigns_from: str = "measurement") -> ReportData:
    """Every section's rows, from an open warehouse connection (read-only is enough); `campaigns_from`:
    "measured" reads the campaign sections from the copy just taken (report/snapshots.py)."""
    data = ReportData(generated_at=generated_at)
    needed = {("measurement", n) for n in (*CAMPAIGN_MODELS, "lead_funnel", "sync_health")}
    present = {(s, n) for s, n in needed if _exists(con, campaigns_from if n in CAMPAIGN_MODELS else s, n)}
    data.missing = sorted(f"{s}.{n}" for s, n in needed - present)

    _campaign_measurement(con, data, present, schema=campaigns_from)
    if ("measurement", "lead_funnel") in present:
        # A warehouse built before the funnel said who skipped a stage has none of these columns.
        newer = _columns(con, "measurement", "lead_funnel") >= {"skipped_a_stage", "mqls_reaching_sql",
                                                                 "sqls_reaching_customer"}
        skipped = "sum(skipped_a_stage)" if newer else "null"
        to_sql = "sum(mqls_reaching_sql)" if newer else "sum(sqls)"
        to_customer = "sum(sqls_reaching_customer)" if newer else "sum(customers)"
        data.funnel = _rows(con, f"""
            select lead_source, sum(leads) as leads, sum(mqls) as mqls, sum(sqls) as sqls, sum(customers) as customers,
                   {to_sql} as mqls_reaching_sql, {to_customer} as sqls_reaching_customer, {skipped} as skipped,
                   -- the typical month's median (the model keeps the exact median per month)
                   median(median_days_lead_to_mql) as days_to_mql, median(median_days_mql_to_sql) as days_to_sql,
                   median(median_days_sql_to_customer) as days_to_customer
            from measurement.lead_funnel group by lead_source order by sum(leads) desc, lead_source""")
        totals = _rows(con, f"""
            select sum(leads) as leads, sum(mqls) as mqls, sum(sqls) as sqls, sum(customers) as customers,
                   {to_sql} as mqls_reaching_sql, {to_customer} as sqls_reaching_customer
            from measurement.lead_funnel""")
        if totals and totals[0]["leads"]:
            t = {k: int(v or 0) for k, v in totals[0].items()}
            # people: who reached the stage; came_from_previous: of the previous stage's people, who went on to it
            data.funnel_totals = [
                {"stage": "Leads", "people": t["leads"], "came_from_previous": None},
                {"stage": "MQL", "people": t["mqls"], "came_from_previous": t["mqls"]},
                {"stage": "SQL", "people": t["sqls"], "came_from_previous": t["mqls_reaching_sql"]},
                {"stage": "Customers", "people": t["customers"], "came_from_previous": t["sqls_reaching_customer"]},
            ]
    if ("measurement", "sync_health") in present:
        data.sync_runs = con.execute("select count(*) from measurement.sync_health").fetchone()[0]
        # Every column (older warehouses' views lack what destinations report): html.py reads with .get().
        data.sync_health = _rows(con, """
            select *
            from (select h.*, row_number() over (partition by sync_name order by started_at desc) as recency
                  from measurement.sync_health as h) as ranked
            where recency = 1
            order by sync_name""")
    if _exists(con, "predictions", "propensity_models"):
        # The latest training of each model, and the last one published (what the scores come from).
        data.propensity_models = _rows(con, """
            select model, trained_at, holdout_rows, holdout_positives, auc, rule_auc, rule, brier, published, reason,
                   max(trained_at) filter (where published) over (partition by model) as published_at
            from predictions.propensity_models
            qualify row_number() over (partition by model order by trained_at desc) = 1
            order by model""")
    if _exists(con, "predictions", "clv_models"):
        data.clv_model = _rows(con, """
            select status, trained_at, reason, customers, repeat_buyers, holdout_predicted, holdout_actual,
                   holdout_error, r, alpha, a, b,
                   max(trained_at) filter (where published) over () as published_at
            from predictions.clv_models
            qualify row_number() over (order by trained_at desc) = 1""")
    if _exists(con, "predictions", "customer_clv"):
        # Bands of predicted value: what the published model expects the buyers to be worth.
        data.clv_values = _rows(con, """
            select band, count(*) as buyers
            from (select case when expected_value_365d < 10 then 'under €10'
                              when expected_value_365d < 50 then '€10–50'
                              when expected_value_365d < 200 then '€50–200'
                              when expected_value_365d < 1000 then '€200–1,000'
                              else '€1,000 and more' end as band,
                         case when expected_value_365d < 10 then 1 when expected_value_365d < 50 then 2
                              when expected_value_365d < 200 then 3 when expected_value_365d < 1000 then 4
                              else 5 end as band_order
                  from predictions.customer_clv where expected_value_365d is not null)
            group by band, band_order order by band_order""")
    if _exists(con, "activation", "message_ledger") and {"variant_probability", "timed_by"} <= _columns(
            con, "activation", "message_ledger"):
        # Which variant each A/B step chose, per day it planned (a bandit's shares move; an even split's do not).
        data.allocations = _rows(con, """
            select campaign, step, cast(planned_at as date) as day, template as variant, count(*) as messages
            from activation.message_ledger
            where variant_probability is not null
            group by campaign, step, cast(planned_at as date), template
            order by campaign, step, day, variant""")
        if _exists(con, "measurement", "message_outcomes"):
            data.send_times = _rows(con, """
                select coalesce(l.timed_by, 'as_soon_as_due') as timed_by,
                       sum(case when o.delivered then 1 else 0 end) as delivered,
                       sum(case when o.delivered and o.opened then 1 else 0 end) as opened
                from activation.message_ledger as l
                inner join measurement.message_outcomes as o on o.message_id = l.message_id
                where l.state = 'sent' and l.channel in ('email', 'esp')
                group by coalesce(l.timed_by, 'as_soon_as_due')
                order by timed_by""")
            # Campaigns with a send-time control group: the group against the rest, a randomized comparison.
            data.send_time_tests = _rows(con, """
                select l.campaign, coalesce(l.timed_by, '') = 'control' as control,
                       sum(case when o.delivered then 1 else 0 end) as delivered,
                       sum(case when o.delivered and o.opened then 1 else 0 end) as opened
                from activation.message_ledger as l
                inner join measurement.message_outcomes as o on o.message_id = l.message_id
                where l.state = 'sent'
                  and l.campaign in (select campaign from activation.message_ledger where timed_by = 'control')
                group by l.campaign, coalesce(l.timed_by, '') = 'control'
                order by l.campaign, control""")
    if _exists(con, "marts", "listening_brand_weekly"):
        # Brand awareness: every mention (topic 'all') per week and brand of listening.yml.
        data.listening = _rows(con, """
            select week_start, brand, is_own_brand, mentions, share_of_voice, avg_sentiment, share_positive,
                   share_negative
            from marts.listening_brand_weekly where topic = 'all'
            order by week_start, is_own_brand desc, brand""")
    if _exists(con, "measurement", "journey_steps"):
        # The path customers took through the journeys: campaigns of two steps or more.
        data.journeys = _rows(con, """
            select * from measurement.journey_steps
            where campaign in (select campaign from measurement.journey_steps group by campaign
                               having count(distinct step) > 1)
            order by campaign, step, channel""")
    if _exists(con, "marts", "social_engagement_weekly"):
        # Social engagement: interactions per week and kind, every platform together.
        data.social = _rows(con, """
            select week_start, kind, sum(interactions) as interactions, sum(customers) as customers,
                   sum(interactions_by_customers) as interactions_by_customers
            from marts.social_engagement_weekly
            group by week_start, kind
            order by week_start, kind""")
    if _exists(con, "activation", "sync_runs"):
        # The audience each run saw, the last run of each day per sync.
        data.audience_sizes = _rows(con, """
            select sync_name, destination, day, audience_rows from (
                select sync_name, destination, cast(started_at as date) as day, audience_rows,
                       row_number() over (partition by sync_name, cast(started_at as date)
                                          order by started_at desc) as recency
                from activation.sync_runs
                where audience_rows is not null) as daily
            where recency = 1
            order by sync_name, day""")
    return data

