-- MQL hand-off: a B2B lead that marketing qualified (MQL) in the last `lead_nurture_window_days`
-- becomes a task for the sales team on their CRM contact (policy: channel sales_task). The lead
-- nurture series stops at MQL (its exit 'became_mql'); this is where sales takes over. One
-- occurrence per MQL date; it exits once sales accepted the lead ('accepted_by_sales': SQL)
-- or they bought ('purchased'), so a task is never created for a lead already being handled.
with mqls as (
    select
        customer_id,
        phone,
        company,
        job_title,
        lead_source,
        lead_score,
        became_mql_at,
        became_sql_at,
        became_customer_at,
        lifecycle_stage,
        orders_count
    from {{ ref('customers') }}
    where is_b2b
      and became_mql_at is not null
      and became_mql_at <= {{ attiva.as_of() }}
      and became_mql_at > {{ dbt.dateadd('day', -var('lead_nurture_window_days'), attiva.as_of()) }}
),

final as (
    select
        customer_id || ':' || cast(cast(became_mql_at as date) as {{ dbt.type_string() }}) as trigger_key,
        customer_id,
        became_mql_at as occurred_at,
        case
            when orders_count > 0 or became_customer_at <= {{ attiva.as_of() }} then 'purchased'
            when lifecycle_stage = 'sql' or became_sql_at <= {{ attiva.as_of() }} then 'accepted_by_sales'
        end as exit_reason,
        phone,
        company,
        job_title,
        lead_source,
        lead_score,
        became_mql_at
    from mqls
)

select * from final
