with items as (
    select * from {{ ref('int_order_items') }}
),

orders as (
    select order_id, customer_id, ordered_at, is_completed from {{ ref('orders') }}
),

final as (
    select
        i.order_item_id,
        i.order_id,
        o.customer_id,
        o.ordered_at,
        o.is_completed,
        i.product_id,
        i.quantity,
        i.unit_price,
        i.line_amount
    from items as i
    inner join orders as o on i.order_id = o.order_id
)

select * from final
