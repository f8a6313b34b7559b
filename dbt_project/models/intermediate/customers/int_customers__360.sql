-- Customer 360: one row per person, however many sources and spellings they appear under
-- (the rows of the customers mart), from the per-customer building blocks (int_customers__*).
-- Incremental: a run rewrites the affected customers (int_customers__affected) and every
-- buyer whose RFM scores, days since the last order or lapsed state moved: scores rank all
-- buyers at once, the typical repeat gap is the whole population's, and the days (with churn
-- risk and lifecycle stage) move with as_of.
-- RFM scheme, segments and the lapsed rule: docs/scores.md.
{%- set w = var('lead_score_weights') %}

-- depends_on: {{ ref('int_customers__affected') }}
with purchase_history as (select * from {{ ref('int_customers__purchases') }}),
timezones as (select * from {{ ref('country_timezones') }}),

measured as (
    select
        *,
        cast(revenue / orders_count as {{ dbt.type_numeric() }}) as avg_order_value,
        {{ dbt.datediff('last_order_at', attiva.as_of(), 'day') }} as days_since_last_order
    from purchase_history
),

-- Worst first; tied buyers share a rank (the position of the first of them).
ranked as (
    select
        *,
        rank() over (order by days_since_last_order desc) as recency_rank,
        rank() over (order by orders_count) as frequency_rank,
        rank() over (order by revenue) as monetary_rank,
        count(*) over () as buyers
    from measured
),

scored as (
    select
        *,
        {{ attiva.tied_quintile('recency_rank', 'buyers') }} as recency_score,
        {{ attiva.tied_quintile('frequency_rank', 'buyers') }} as frequency_score,
        {{ attiva.tied_quintile('monetary_rank', 'buyers') }} as monetary_score
    from ranked
),

-- The typical repeat buyer's rhythm: the median of repeat buyers' own average gaps. It stands
-- in for the rhythm of buyers who have none of their own (one order, or all on one day).
population as (
    select {{ attiva.median('avg_days_between_orders') }} as typical_gap_days
    from purchase_history
    where avg_days_between_orders > 0
),

-- Each buyer's rhythm and the days without an order after which they count as lapsed:
-- lapsed_after_gaps x rhythm, within [lapsed_min_days, lapsed_after_days].
rhythm as (
    select
        s.*,
        case when s.avg_days_between_orders > 0 then s.avg_days_between_orders else p.typical_gap_days end
            as rhythm_days
    from scored as s
    cross join population as p
),

-- RFM segments (a table of R and F ranges, docs/scores.md) and a rule-based churn risk: how
-- overdue the next order is against the buyer's own rhythm
purchases as (
    select
        *,
        case
            when recency_score >= 4 and frequency_score >= 4 and monetary_score >= 4 then 'champion'
            when recency_score >= 3 and frequency_score >= 3 then 'loyal'
            when recency_score >= 4 and frequency_score <= 2 then 'new'
            when recency_score <= 2 and frequency_score >= 3 then 'at_risk'
            when recency_score <= 2 then 'hibernating'
            else 'needs_attention'
        end as rfm_segment,
        case
            when avg_days_between_orders is not null and avg_days_between_orders > 0 then
                case
                    when days_since_last_order <= 1.5 * avg_days_between_orders then 'low'
                    when days_since_last_order <= 3 * avg_days_between_orders then 'medium'
                    else 'high'
                end
            when days_since_last_order <= 90 then 'low'
            when days_since_last_order <= 180 then 'medium'
            else 'high'
        end as churn_risk,
        days_since_last_order > coalesce(
            least({{ var('lapsed_after_days') }},
                  greatest({{ var('lapsed_min_days') }}, {{ var('lapsed_after_gaps') }} * rhythm_days)),
            {{ var('lapsed_after_days') }}) as is_lapsed
    from rhythm
),

{% if is_incremental() %}
-- buyers whose scores or state moved (ranks shift as others buy, and so does the typical gap;
-- days grow with as_of)
rescored as (
    select s.customer_id
    from purchases as s
    left join {{ this }} as t on s.customer_id = t.customer_id
    where t.customer_id is null
       or t.days_since_last_order is distinct from s.days_since_last_order
       or t.recency_score is distinct from s.recency_score
       or t.frequency_score is distinct from s.frequency_score
       or t.monetary_score is distinct from s.monetary_score
       or (t.lifecycle_stage = 'lapsed') is distinct from s.is_lapsed
),

affected_customers as (
    {{ attiva.affected_customers() }}
    union
    select customer_id from rescored
),
{% endif %}

consent as (
    select
        customer_id,
        max(case when channel = 'email' and status = 'granted' then 1 else 0 end) = 1 as consent_email,
        max(case when channel = 'sms' and status = 'granted' then 1 else 0 end) = 1 as consent_sms,
        max(case when channel = 'push' and status = 'granted' then 1 else 0 end) = 1 as consent_push,
        max(case when channel = 'ads' and status = 'granted' then 1 else 0 end) = 1 as consent_ads,
        max(case when channel = 'profiling' and status = 'granted' then 1 else 0 end) = 1 as consent_profiling
    from {{ ref('int_customers__consent') }}
    where 1 = 1 {{ attiva.only_affected() }}
    group by customer_id
),

profile as (select * from {{ ref('int_customers__profile') }} where 1 = 1 {{ attiva.only_affected() }}),
crm as (select * from {{ ref('int_customers__crm') }} where 1 = 1 {{ attiva.only_affected() }}),
social as (select * from {{ ref('int_customers__social_leads') }} where 1 = 1 {{ attiva.only_affected() }}),
activity as (select * from {{ ref('int_customers__activity') }} where 1 = 1 {{ attiva.only_affected() }}),
engagement as (select * from {{ ref('int_customers__engagement') }} where 1 = 1 {{ attiva.only_affected() }}),
favourites as (select * from {{ ref('int_customers__favourites') }} where 1 = 1 {{ attiva.only_affected() }}),

joined as (
    select
        p.customer_id,
        p.email,
        p.phone,
        p.first_name,
        p.last_name,
        p.birth_date,
        p.country,
        p.city,
        p.company,
        p.job_title,
        crm.crm_stage,
        -- a lead-ad form is a lead of its own (when the CRM has no say): its source and time count
        coalesce(crm.crm_lead_source, so.social_lead_source, a.form_lead_source) as lead_source,
        coalesce(crm.became_lead_at, so.first_social_lead_at) as became_lead_at,
        crm.became_mql_at,
        crm.became_sql_at,
        crm.became_customer_at,
        coalesce(c.consent_email, false) as consent_email,
        coalesce(c.consent_sms, false) as consent_sms,
        coalesce(c.consent_push, false) as consent_push,
        coalesce(c.consent_ads, false) as consent_ads,
        coalesce(c.consent_profiling, false) as consent_profiling,
        e.email_hard_bounced_at,
        e.email_complained_at,
        e.email_unsubscribed_at,
        coalesce(e.email_opens_90d, 0) as email_opens_90d,
        coalesce(e.email_clicks_90d, 0) as email_clicks_90d,
        coalesce(pu.orders_count, 0) as orders_count,
        cast(coalesce(pu.revenue, 0) as {{ dbt.type_numeric() }}) as revenue,
        pu.avg_order_value,
        pu.first_order_at,
        pu.last_order_at,
        pu.days_since_last_order,
        pu.recency_score,
        pu.frequency_score,
        pu.monetary_score,
        pu.rfm_segment,
        pu.churn_risk,
        pu.is_lapsed,
        coalesce(a.form_submits, 0) as form_submits,
        coalesce(a.contact_sales_forms, 0) as contact_sales_forms,
        coalesce(a.product_views_30d, 0) as product_views_30d,
        greatest(coalesce(a.last_seen_at, pu.last_order_at), coalesce(pu.last_order_at, a.last_seen_at)) as last_seen_at,
        f.favourite_category,
        f.favourite_product_id,
        coalesce(tz.timezone, 'Europe/Rome') as timezone,
        p.identifiers_count,
        p.first_seen_at
    from profile as p
    left join crm on p.customer_id = crm.customer_id
    left join social as so on p.customer_id = so.customer_id
    left join consent as c on p.customer_id = c.customer_id
    left join engagement as e on p.customer_id = e.customer_id
    left join purchases as pu on p.customer_id = pu.customer_id
    left join activity as a on p.customer_id = a.customer_id
    left join favourites as f on p.customer_id = f.customer_id
    left join timezones as tz on p.country = tz.country
),

computed as (
    select
        customer_id,
        email,
        phone,
        first_name,
        last_name,
        company,
        job_title,
        company is not null as is_b2b,
        country,
        city,
        timezone,
        birth_date,
        cast(extract(month from birth_date) as integer) as birthday_month,
        cast(extract(day from birth_date) as integer) as birthday_day,
        consent_email,
        consent_sms,
        consent_push,
        consent_ads,
        consent_profiling,
        email_hard_bounced_at is not null as email_hard_bounced,
        email is not null and consent_email and email_hard_bounced_at is null as email_marketable,
        case
            when orders_count > 0 and is_lapsed then 'lapsed'
            when orders_count > 0 then 'customer'
            when crm_stage in ('sql', 'mql') then crm_stage
            else 'lead'
        end as lifecycle_stage,
        lead_source,
        cast(least(100,
            {{ w.form_submit }} * form_submits
            + {{ w.contact_sales_form }} * contact_sales_forms
            + {{ w.email_open }} * email_opens_90d
            + {{ w.email_click }} * email_clicks_90d
            + {{ w.product_view }} * product_views_30d
            + case when company is not null then {{ w.has_company }} else 0 end
            + case when {{ attiva.regex_matches("lower(coalesce(job_title, ''))",
                   '(ceo|cto|cmo|cfo|founder|owner|director|head|manager|buyer|responsabile|titolare)') }}
                   then {{ w.senior_title }} else 0 end
        ) as integer) as lead_score,
        became_lead_at,
        became_mql_at,
        became_sql_at,
        coalesce(became_customer_at, first_order_at) as became_customer_at,
        cast(orders_count as bigint) as orders_count,
        revenue,
        avg_order_value,
        first_order_at,
        last_order_at,
        cast(days_since_last_order as bigint) as days_since_last_order,
        cast(recency_score as integer) as recency_score,
        cast(frequency_score as integer) as frequency_score,
        cast(monetary_score as integer) as monetary_score,
        rfm_segment,
        churn_risk,
        cast(email_opens_90d as bigint) as email_opens_90d,
        cast(email_clicks_90d as bigint) as email_clicks_90d,
        last_seen_at,
        favourite_category,
        favourite_product_id,
        cast(identifiers_count as bigint) as identifiers_count,
        first_seen_at
    from joined
),

final as (
    {{ attiva.per_customer_rows('computed', [
        'email', 'phone', 'first_name', 'last_name', 'company', 'job_title', 'is_b2b', 'country', 'city',
        'timezone', 'birth_date', 'birthday_month', 'birthday_day', 'consent_email', 'consent_sms',
        'consent_push', 'consent_ads', 'consent_profiling', 'email_hard_bounced', 'email_marketable', 'lifecycle_stage',
        'lead_source', 'lead_score', 'became_lead_at', 'became_mql_at', 'became_sql_at',
        'became_customer_at', 'orders_count', 'revenue', 'avg_order_value', 'first_order_at',
        'last_order_at', 'days_since_last_order', 'recency_score', 'frequency_score', 'monetary_score',
        'rfm_segment', 'churn_risk', 'email_opens_90d', 'email_clicks_90d', 'last_seen_at',
        'favourite_category', 'favourite_product_id', 'identifiers_count', 'first_seen_at'
    ]) }}
)

select * from final
