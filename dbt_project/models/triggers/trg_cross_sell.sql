-- Post-purchase cross-sell: `cross_sell_after_days` after each completed order, one message
-- per order suggesting what goes with it. The suggestions themselves are read from
-- marts.customer_recommendations when the message is sent; an order whose customer has
-- none, or whose products are not in the catalogue, gets no occurrence. The occurrence
-- stays `cross_sell_window_days` after it is due.
with due_orders as (
    select
        o.order_id,
        o.customer_id,
        o.ordered_at,
        {{ dbt.dateadd('day', var('cross_sell_after_days'), 'o.ordered_at') }} as due_at
    from {{ ref('orders') }} as o
    where o.is_completed
      and o.customer_id is not null
      and o.ordered_at <= {{ dbt.dateadd('day', -var('cross_sell_after_days'), attiva.as_of()) }}
      and o.ordered_at > {{ dbt.dateadd('day', -(var('cross_sell_after_days') + var('cross_sell_window_days')), attiva.as_of()) }}
),

-- The order's main product: its largest line.
main_lines as (
    select
        i.order_id,
        i.product_id,
        row_number() over (partition by i.order_id order by i.line_amount desc, i.product_id) as line_rank
    from {{ ref('order_items') }} as i
    inner join due_orders as d on i.order_id = d.order_id
),

with_recommendations as (
    select distinct customer_id from {{ ref('customer_recommendations') }}
),

final as (
    select
        d.order_id as trigger_key,
        d.customer_id,
        d.due_at as occurred_at,
        d.order_id,
        d.ordered_at,
        l.product_id,
        p.product_name
    from due_orders as d
    inner join with_recommendations as r on d.customer_id = r.customer_id
    inner join main_lines as l on d.order_id = l.order_id and l.line_rank = 1
    inner join {{ ref('products') }} as p on l.product_id = p.product_id
)

select * from final
