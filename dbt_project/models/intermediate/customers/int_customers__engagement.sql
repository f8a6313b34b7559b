-- Email engagement per customer: recent opens and clicks, and what makes an address
-- unusable (hard bounce, complaint).
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

nodes as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where 1 = 1 {{ attiva.only_affected() }}
),

engagement as (
    select distinct n.customer_id, e.engagement_id, e.event_type, e.bounce_type, e.occurred_at
    from {{ ref('stg_email__engagement') }} as e
    inner join nodes as n on n.node = 'email:' || e.email
),

computed as (
    select
        customer_id,
        sum(case when event_type = 'open'
                  and occurred_at >= {{ dbt.dateadd('day', -90, attiva.as_of()) }} then 1 else 0 end) as email_opens_90d,
        sum(case when event_type = 'click'
                  and occurred_at >= {{ dbt.dateadd('day', -90, attiva.as_of()) }} then 1 else 0 end) as email_clicks_90d,
        max(case when event_type in ('open', 'click') then occurred_at end) as last_email_engaged_at,
        max(case when event_type = 'bounce' and bounce_type = 'hard' then occurred_at end) as email_hard_bounced_at,
        max(case when event_type = 'complaint' then occurred_at end) as email_complained_at,
        max(case when event_type = 'unsubscribe' then occurred_at end) as email_unsubscribed_at
    from engagement
    where occurred_at <= {{ attiva.as_of() }}
    group by customer_id
),

final as (
    {{ attiva.per_customer_rows('computed', ['email_opens_90d', 'email_clicks_90d', 'last_email_engaged_at',
                                             'email_hard_bounced_at', 'email_complained_at',
                                             'email_unsubscribed_at']) }}
)

select * from final
