-- Email engagement per customer: recent opens and clicks, and what makes an address
-- unusable (hard bounce, complaint).
with nodes as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
),

engagement as (
    select distinct n.customer_id, e.engagement_id, e.event_type, e.bounce_type, e.occurred_at
    from {{ ref('stg_email__engagement') }} as e
    inner join nodes as n on n.node = 'email:' || e.email
),

final as (
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
)

select * from final
