-- Per campaign, journey step and variant (the step's template; two templates on one step are an
-- A/B test): what was sent, what the ESP reported, and the orders attributed to it
-- (message_conversions). Rates are over delivered messages for engagement, over sent messages
-- for conversion and revenue.

with outcomes as (
    select * from {{ ref('message_outcomes') }}
),

conversions as (
    select message_id, count(*) as orders, sum(revenue) as revenue
    from {{ ref('message_conversions') }}
    where not is_holdout
    group by message_id
),

per_variant as (
    select
        o.campaign,
        o.step,
        o.variant,
        sum(case when not o.is_holdout then 1 else 0 end) as sent,
        sum(case when o.is_holdout then 1 else 0 end) as held_out,
        sum(case when o.delivered then 1 else 0 end) as delivered,
        sum(case when o.opened then 1 else 0 end) as opened,
        sum(case when o.clicked then 1 else 0 end) as clicked,
        sum(case when o.bounced then 1 else 0 end) as bounced,
        sum(case when o.unsubscribed then 1 else 0 end) as unsubscribed,
        sum(case when o.complained then 1 else 0 end) as complained,
        sum(case when c.orders > 0 then 1 else 0 end) as converted,
        coalesce(sum(c.orders), 0) as orders,
        coalesce(sum(c.revenue), 0) as revenue,
        min(o.sent_at) as first_sent_at,
        max(o.sent_at) as last_sent_at
    from outcomes as o
    left join conversions as c on c.message_id = o.message_id and not o.is_holdout
    group by o.campaign, o.step, o.variant
),

final as (
    select
        campaign,
        step,
        variant,
        sent,
        held_out,
        delivered,
        opened,
        clicked,
        bounced,
        unsubscribed,
        complained,
        converted,
        orders,
        revenue,
        cast(delivered as double) / nullif(sent, 0) as delivery_rate,
        cast(opened as double) / nullif(delivered, 0) as open_rate,
        cast(clicked as double) / nullif(delivered, 0) as click_rate,
        cast(unsubscribed as double) / nullif(delivered, 0) as unsubscribe_rate,
        cast(converted as double) / nullif(sent, 0) as conversion_rate,
        cast(revenue as double) / nullif(sent, 0) as revenue_per_recipient,
        first_sent_at,
        last_sent_at
    from per_variant
)

select * from final
