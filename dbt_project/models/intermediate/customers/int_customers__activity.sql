-- What each customer did on the site and app, and the signals the lead score counts.
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

events as (
    select * from {{ ref('events') }}
    where customer_id is not null and occurred_at <= {{ attiva.as_of() }} {{ attiva.only_affected() }}
),

computed as (
    select
        customer_id,
        max(occurred_at) as last_seen_at,
        sum(case when event_type = 'form_submit' then 1 else 0 end) as form_submits,
        sum(case when event_type = 'form_submit' and form_name = 'contact_sales' then 1 else 0 end) as contact_sales_forms,
        sum(case when event_type = 'product_view'
                  and occurred_at >= {{ dbt.dateadd('day', -30, attiva.as_of()) }} then 1 else 0 end) as product_views_30d,
        max_by(lead_source, case when event_type = 'form_submit' and lead_source is not null then occurred_at end)
            as form_lead_source,
        min(case when event_type = 'form_submit' then occurred_at end) as first_form_submit_at
    from events
    group by customer_id
),

final as (
    {{ attiva.per_customer_rows('computed', ['last_seen_at', 'form_submits', 'contact_sales_forms',
                                             'product_views_30d', 'form_lead_source', 'first_form_submit_at']) }}
)

select * from final
