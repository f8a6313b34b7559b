-- Purchases sent back to Google Ads through the Data Manager API (events:ingest): one row per completed
-- order of a customer with ads consent, placed within var google_conversions_window_days
-- (docs/destinations/google-conversions.md).
-- transaction_id is the order id: the transaction_id the shop's Google tag sends with its purchase
-- conversion, so Google counts a purchase once, whichever of the two reaches it first.
with recent_orders as (
    {{ attiva.completed_orders_since(dbt.dateadd('day', -var('google_conversions_window_days'), attiva.as_of())) }}
),

final as (
    select
        o.order_id as transaction_id,
        o.customer_id,
        c.email,
        c.phone,
        o.ordered_at as event_timestamp,
        case o.channel
            when 'store' then 'IN_STORE'
            when 'app' then 'APP'
            else 'WEB'
        end as event_source,
        o.total_amount as conversion_value,
        '{{ var("conversions_currency") }}' as currency,
        c.consent_ads
    from recent_orders as o
    inner join {{ ref('customers') }} as c on c.customer_id = o.customer_id
    where c.consent_ads
)

select * from final
