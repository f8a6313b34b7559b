-- Customer 360: one row per person, however many sources and spellings they appear under.
{%- set w = var('lead_score_weights') %}
with profile as (select * from {{ ref('int_customers__profile') }}),
crm as (select * from {{ ref('int_customers__crm') }}),
purchases as (select * from {{ ref('int_customers__purchases') }}),
activity as (select * from {{ ref('int_customers__activity') }}),
engagement as (select * from {{ ref('int_customers__engagement') }}),
favourites as (select * from {{ ref('int_customers__favourites') }}),
timezones as (select * from {{ ref('country_timezones') }}),

consent as (
    select
        customer_id,
        max(case when channel = 'email' and status = 'granted' then 1 else 0 end) = 1 as consent_email,
        max(case when channel = 'sms' and status = 'granted' then 1 else 0 end) = 1 as consent_sms,
        max(case when channel = 'ads' and status = 'granted' then 1 else 0 end) = 1 as consent_ads,
        max(case when channel = 'profiling' and status = 'granted' then 1 else 0 end) = 1 as consent_profiling
    from {{ ref('int_customers__consent') }}
    group by customer_id
),

identifiers as (
    select
        customer_id,
        count(distinct identifier_type || ':' || identifier_value) as identifiers_count,
        min(first_seen_at) as first_seen_at
    from {{ ref('customer_identifiers') }}
    group by customer_id
),

joined as (
    select
        p.*,
        crm.crm_stage,
        coalesce(crm.crm_lead_source, a.form_lead_source) as lead_source,
        crm.became_lead_at,
        crm.became_mql_at,
        crm.became_sql_at,
        crm.became_customer_at,
        coalesce(c.consent_email, false) as consent_email,
        coalesce(c.consent_sms, false) as consent_sms,
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
        coalesce(a.form_submits, 0) as form_submits,
        coalesce(a.contact_sales_forms, 0) as contact_sales_forms,
        coalesce(a.product_views_30d, 0) as product_views_30d,
        greatest(coalesce(a.last_seen_at, pu.last_order_at), coalesce(pu.last_order_at, a.last_seen_at)) as last_seen_at,
        f.favourite_category,
        f.favourite_product_id,
        coalesce(tz.timezone, 'Europe/Rome') as timezone,
        i.identifiers_count,
        i.first_seen_at
    from profile as p
    left join crm on p.customer_id = crm.customer_id
    left join consent as c on p.customer_id = c.customer_id
    left join engagement as e on p.customer_id = e.customer_id
    left join purchases as pu on p.customer_id = pu.customer_id
    left join activity as a on p.customer_id = a.customer_id
    left join favourites as f on p.customer_id = f.customer_id
    left join timezones as tz on p.country = tz.country
    left join identifiers as i on p.customer_id = i.customer_id
),

final as (
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
        consent_ads,
        consent_profiling,
        email_hard_bounced_at is not null as email_hard_bounced,
        email is not null and consent_email and email_hard_bounced_at is null as email_marketable,
        case
            when orders_count > 0 and days_since_last_order > {{ var('lapsed_after_days') }} then 'lapsed'
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
)

select * from final
