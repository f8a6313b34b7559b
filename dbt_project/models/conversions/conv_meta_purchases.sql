-- Purchases sent back to Meta's Conversions API: one row per completed order of a customer with ads
-- consent, placed within the window Meta accepts (docs/destinations/meta-conversions.md).
-- event_id is the order id: the id the shop's browser pixel sends with its Purchase event (eventID), so
-- Meta counts a purchase once, whichever of the two reaches it first.
with recent_orders as (
    -- Meta refuses an event older than 7 days when it is sent: a margin for the time between build and send.
    {{ attiva.completed_orders_since(dbt.dateadd('hour', -var('meta_conversions_window_hours'), attiva.as_of())) }}
),

-- The postal code of the shop account that placed the order (the customer 360 keeps none).
shop_accounts as (
    select
        shop_customer_id,
        postal_code
    from {{ ref('stg_shop__customers') }}
    where is_latest_version
),

final as (
    select
        o.order_id as event_id,
        o.customer_id,
        c.email,
        c.phone,
        c.first_name,
        c.last_name,
        c.city,
        s.postal_code as zip,
        c.country,
        'Purchase' as event_name,
        o.ordered_at as event_time,
        case o.channel
            when 'store' then 'physical_store'
            when 'app' then 'app'
            else 'website'
        end as action_source,
        o.total_amount as value,
        '{{ var("conversions_currency") }}' as currency,
        c.consent_ads
    from recent_orders as o
    inner join {{ ref('customers') }} as c on c.customer_id = o.customer_id
    left join shop_accounts as s on s.shop_customer_id = o.shop_customer_id
    where c.consent_ads
)

select * from final
