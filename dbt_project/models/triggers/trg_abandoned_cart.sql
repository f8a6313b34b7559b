-- Abandoned cart: one occurrence per cart, a cart being the add_to_cart / checkout_started
-- events between two orders of the customer. A cart with no order after it is still open;
-- one followed by an order has exited the journey ('ordered'). Only carts touched in the
-- last `abandoned_cart_lookback_days` are kept, but each is computed from all its events,
-- so its start (and key) never moves as the window slides. The wait before the message
-- (cart_abandon_delay_hours) is the policy's step delay, counted from the last activity.
{%- set since = dbt.dateadd('day', -var('abandoned_cart_lookback_days'), attiva.as_of()) %}
with cart_events as (
    select event_id, customer_id, event_type, product_id, quantity, occurred_at
    from {{ ref('events') }}
    where event_type in ('add_to_cart', 'checkout_started')
      and customer_id is not null
      and occurred_at <= {{ attiva.as_of() }}
),

recent_carters as (
    select distinct customer_id from cart_events where occurred_at > {{ since }}
),

orders as (
    select o.customer_id, o.ordered_at
    from {{ ref('orders') }} as o
    inner join recent_carters as r on o.customer_id = r.customer_id
    where o.ordered_at <= {{ attiva.as_of() }}
),

-- Each cart event with the first order placed at or after it: events sharing it form one cart.
with_next_order as (
    select e.event_id, e.customer_id, e.event_type, e.product_id, e.quantity, e.occurred_at,
           min(o.ordered_at) as next_order_at
    from cart_events as e
    inner join recent_carters as r on e.customer_id = r.customer_id
    left join orders as o on e.customer_id = o.customer_id and o.ordered_at >= e.occurred_at
    group by e.event_id, e.customer_id, e.event_type, e.product_id, e.quantity, e.occurred_at
),

cart_events_by_cart as (
    select
        *,
        min(occurred_at) over (partition by customer_id, next_order_at) as cart_started_at
    from with_next_order
),

carts as (
    select
        customer_id,
        cart_started_at,
        max(next_order_at) as ordered_at,
        max(occurred_at) as last_activity_at
    from cart_events_by_cart
    group by customer_id, cart_started_at
),

cart_lines as (
    select customer_id, cart_started_at, product_id, sum(coalesce(quantity, 1)) as quantity
    from cart_events_by_cart
    where event_type = 'add_to_cart' and product_id is not null
    group by customer_id, cart_started_at, product_id
),

-- Current catalogue name and price (promotion included); a product missing from the
-- catalogue cannot be shown, so it is left out of the message.
priced_lines as (
    select
        l.customer_id,
        l.cart_started_at,
        l.product_id,
        p.product_name,
        cast(p.current_price as double) as price,
        cast(l.quantity as bigint) as quantity
    from cart_lines as l
    inner join {{ ref('products') }} as p on l.product_id = p.product_id
),

contents as (
    select
        customer_id,
        cart_started_at,
        {{ attiva.json_array_of_objects([
            ('product_id', 'product_id'),
            ('name', 'product_name'),
            ('price', 'price'),
            ('quantity', 'quantity'),
        ]) }} as cart_products_json,
        cast(round(sum(price * quantity), 2) as double) as cart_value,
        cast(sum(quantity) as bigint) as cart_items
    from priced_lines
    group by customer_id, cart_started_at
),

final as (
    select
        c.customer_id || ':' || cast(c.cart_started_at as {{ dbt.type_string() }}) as trigger_key,
        c.customer_id,
        c.last_activity_at as occurred_at,
        case when c.ordered_at is not null then 'ordered' end as exit_reason,
        c.cart_started_at,
        ct.cart_products_json,
        ct.cart_value,
        ct.cart_items
    from carts as c
    inner join contents as ct on c.customer_id = ct.customer_id and c.cart_started_at = ct.cart_started_at
    where c.last_activity_at > {{ since }}
)

select * from final
