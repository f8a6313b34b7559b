-- People who added to cart or started checkout in the last `cart_abandon_window_hours`,
-- at least `cart_abandon_delay_hours` ago, and have not ordered since.
with carts as (
    select customer_id, max(occurred_at) as last_cart_at, count(distinct product_id) as cart_products
    from {{ ref('events') }}
    where event_type in ('add_to_cart', 'checkout_started')
      and customer_id is not null
      and occurred_at <= {{ dbt.dateadd('hour', -var('cart_abandon_delay_hours'), attiva.as_of()) }}
      and occurred_at > {{ dbt.dateadd('hour', -var('cart_abandon_window_hours'), attiva.as_of()) }}
    group by customer_id
),

later_orders as (
    select o.customer_id, max(o.ordered_at) as last_order_at
    from {{ ref('orders') }} as o
    where o.customer_id is not null and o.ordered_at <= {{ attiva.as_of() }}
    group by o.customer_id
)

select
    {{ attiva.audience_contact_columns() }},
    ca.last_cart_at,
    cast(ca.cart_products as bigint) as cart_products
from carts as ca
inner join {{ ref('customers') }} as c on ca.customer_id = c.customer_id
left join later_orders as lo on ca.customer_id = lo.customer_id
where lo.last_order_at is null or lo.last_order_at < ca.last_cart_at
