-- How leads move through the funnel: lead -> MQL -> SQL -> customer, per lead source and the
-- month the person became a lead (docs/scores.md). A stage counts as reached only when it has a
-- date: a lead sold directly never was an MQL or SQL, and counts in skipped_mql / skipped_sql
-- instead. A lead's first completed order counts as becoming a customer when the CRM has no date
-- for it. A stage-to-stage rate is over the people who reached the earlier stage (mqls_reaching_sql
-- of the mqls, sqls_reaching_customer of the sqls). Medians are in
-- days, over the people with both dates in that order (hours / 24 in double: a 24.0 literal is a
-- decimal on Spark, whose division keeps 6 decimals).

with contacts as (
    select
        customer_id,
        coalesce(lead_source, 'unknown') as lead_source,
        became_lead_at,
        became_mql_at,
        became_sql_at,
        coalesce(
            became_customer_at,
            case when first_order_at >= became_lead_at then first_order_at end
        ) as became_customer_at
    from {{ ref('customers') }}
    where became_lead_at is not null
),

-- A stage dated before the person became a lead (a customer who later filled in a form) is not
-- something this lead converted to.
people as (
    select
        customer_id,
        lead_source,
        became_lead_at,
        case when became_mql_at >= became_lead_at then became_mql_at end as became_mql_at,
        case when became_sql_at >= became_lead_at then became_sql_at end as became_sql_at,
        case when became_customer_at >= became_lead_at then became_customer_at end as became_customer_at
    from contacts
),

stages as (
    select
        lead_source,
        cast({{ dbt.date_trunc('month', 'became_lead_at') }} as date) as lead_month,
        1 as is_lead,
        case when became_mql_at is not null then 1 else 0 end as is_mql,
        case when became_sql_at is not null then 1 else 0 end as is_sql,
        case when became_customer_at is not null then 1 else 0 end as is_customer,
        case when became_mql_at is not null and became_sql_at is not null then 1 else 0 end as is_mql_then_sql,
        case when became_sql_at is not null and became_customer_at is not null then 1 else 0 end as is_sql_then_customer,
        -- reached a later stage with no date for this one
        case when became_mql_at is null and coalesce(became_sql_at, became_customer_at) is not null then 1 else 0 end
            as skipped_mql,
        case when became_sql_at is null and became_customer_at is not null then 1 else 0 end as skipped_sql,
        cast({{ dbt.datediff('became_lead_at', 'became_mql_at', 'hour') }} as double) / 24 as days_lead_to_mql,
        case when became_sql_at >= became_mql_at
            then cast({{ dbt.datediff('became_mql_at', 'became_sql_at', 'hour') }} as double) / 24 end as days_mql_to_sql,
        case when became_customer_at >= became_sql_at
            then cast({{ dbt.datediff('became_sql_at', 'became_customer_at', 'hour') }} as double) / 24 end as days_sql_to_customer,
        cast({{ dbt.datediff('became_lead_at', 'became_customer_at', 'hour') }} as double) / 24 as days_lead_to_customer
    from people
),

final as (
    select
        lead_source,
        lead_month,
        sum(is_lead) as leads,
        sum(is_mql) as mqls,
        sum(is_sql) as sqls,
        sum(is_customer) as customers,
        sum(is_mql_then_sql) as mqls_reaching_sql,
        sum(is_sql_then_customer) as sqls_reaching_customer,
        sum(skipped_mql) as skipped_mql,
        sum(skipped_sql) as skipped_sql,
        sum(case when skipped_mql + skipped_sql > 0 then 1 else 0 end) as skipped_a_stage,
        cast(sum(is_mql) as double) / nullif(sum(is_lead), 0) as lead_to_mql_rate,
        cast(sum(is_mql_then_sql) as double) / nullif(sum(is_mql), 0) as mql_to_sql_rate,
        cast(sum(is_sql_then_customer) as double) / nullif(sum(is_sql), 0) as sql_to_customer_rate,
        cast(sum(is_customer) as double) / nullif(sum(is_lead), 0) as lead_to_customer_rate,
        {{ attiva.median('days_lead_to_mql') }} as median_days_lead_to_mql,
        {{ attiva.median('days_mql_to_sql') }} as median_days_mql_to_sql,
        {{ attiva.median('days_sql_to_customer') }} as median_days_sql_to_customer,
        {{ attiva.median('days_lead_to_customer') }} as median_days_lead_to_customer
    from stages
    group by lead_source, lead_month
)

select * from final
