-- Completed orders attributed to one message each. The evidence, strongest first:
--   utm     the order carries utm_source=attiva and the campaign's utm_campaign: the customer's
--           latest message of that campaign sent before the order;
--   coupon  the order used the single-use coupon a message carried;
--   window  else the customer's last message (sent, or held out: the holdout's orders count
--           against the campaign they were held out of) in the attribution window before the
--           order (var attribution_window_days, default 7).
-- An order is attributed once; orders no message explains are left out.

{% set window_days = var('attribution_window_days', 7) %}

with messages as (
    select message_id, campaign, step, variant, customer_id, is_holdout, sent_at, exposed_at, coupon_code
    from {{ ref('message_outcomes') }}
),

orders as (
    select order_id, customer_id, ordered_at, cast(total_amount as double) as total_amount, utm_source, utm_campaign,
        coupon_code
    from {{ ref('orders') }}
    where is_completed and customer_id is not null
        -- only the orders of people messaged (or held out): no other order can be attributed
        and customer_id in (select customer_id from messages)
),

by_utm as (
    select
        o.order_id,
        m.message_id,
        'utm' as attribution,
        1 as evidence_rank,
        m.exposed_at
    from orders as o
    join messages as m
        on m.customer_id = o.customer_id
        and not m.is_holdout
        and lower(o.utm_source) = 'attiva'
        and o.utm_campaign = m.campaign
        and m.sent_at <= o.ordered_at
),

by_coupon as (
    select
        o.order_id,
        m.message_id,
        'coupon' as attribution,
        2 as evidence_rank,
        m.exposed_at
    from orders as o
    join messages as m
        on m.customer_id = o.customer_id
        and not m.is_holdout
        and upper(o.coupon_code) = upper(m.coupon_code)
        and m.sent_at <= o.ordered_at
),

by_window as (
    select
        o.order_id,
        m.message_id,
        'window' as attribution,
        3 as evidence_rank,
        m.exposed_at
    from orders as o
    join messages as m
        on m.customer_id = o.customer_id
        and m.exposed_at <= o.ordered_at
        and o.ordered_at < {{ dbt.dateadd('day', window_days, 'm.exposed_at') }}
),

candidates as (
    select * from by_utm
    union all
    select * from by_coupon
    union all
    select * from by_window
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_id order by evidence_rank, exposed_at desc, message_id
        ) as choice
    from candidates
),

final as (
    select
        o.order_id,
        o.customer_id,
        o.ordered_at,
        o.total_amount as revenue,
        m.message_id,
        m.campaign,
        m.step,
        m.variant,
        m.is_holdout,
        r.attribution,
        {{ dbt.datediff('m.exposed_at', 'o.ordered_at', 'hour') }} as hours_after_message
    from ranked as r
    join orders as o on o.order_id = r.order_id
    join messages as m on m.message_id = r.message_id
    where r.choice = 1
)

select * from final
