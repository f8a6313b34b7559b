-- Lead nurturing: B2B contacts who became a lead in the last `lead_nurture_window_days`.
-- The content series runs until they buy (exit 'purchased') or marketing qualifies them
-- (exit 'became_mql': sales takes over). An unsubscribe stops it too: consent is checked
-- before every step.
with leads as (
    select
        customer_id,
        company,
        job_title,
        lead_source,
        lead_score,
        became_lead_at,
        became_mql_at,
        became_sql_at,
        became_customer_at,
        lifecycle_stage,
        orders_count
    from {{ ref('customers') }}
    where is_b2b
      and became_lead_at is not null
      and became_lead_at <= {{ attiva.as_of() }}
      and became_lead_at > {{ dbt.dateadd('day', -var('lead_nurture_window_days'), attiva.as_of()) }}
),

final as (
    select
        customer_id as trigger_key,
        customer_id,
        became_lead_at as occurred_at,
        case
            when orders_count > 0 or became_customer_at <= {{ attiva.as_of() }} then 'purchased'
            when lifecycle_stage in ('mql', 'sql')
                or became_mql_at <= {{ attiva.as_of() }}
                or became_sql_at <= {{ attiva.as_of() }} then 'became_mql'
        end as exit_reason,
        company,
        job_title,
        lead_source,
        lead_score
    from leads
)

select * from final
