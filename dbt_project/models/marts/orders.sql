-- Orders with the customer who placed them (null when a guest left no usable identifier).
with orders as (
    select * from {{ ref('int_orders') }}
),

owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }} where not is_shared
),

final as (
    select
        o.order_id,
        ow.customer_id,
        o.shop_customer_id,
        o.email,
        o.ordered_at,
        o.status,
        o.status = 'completed' as is_completed,
        o.total_amount,
        o.channel,
        o.utm_source,
        o.utm_medium,
        o.utm_campaign,
        o.coupon_code
    from orders as o
    left join owners as ow
        on ow.node = case
            when o.shop_customer_id is not null then 'shop_customer_id:' || o.shop_customer_id
            else 'guest_order_id:' || o.order_id
        end
)

select * from final
