-- Web and app events with the customer behind them, resolved at build time so a device
-- identified today also claims its earlier anonymous events.
with events as (
    select * from {{ ref('int_events') }}
),

owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }} where not is_shared
),

final as (
    select
        e.event_id,
        coalesce(by_account.customer_id, by_email.customer_id, by_device.customer_id) as customer_id,
        e.event_type,
        e.occurred_at,
        e.anonymous_id,
        e.shop_customer_id,
        e.platform,
        e.session_id,
        e.product_id,
        e.quantity,
        e.url,
        e.form_name,
        e.lead_source
    from events as e
    left join owners as by_account on by_account.node = 'shop_customer_id:' || e.shop_customer_id
    left join owners as by_email on by_email.node = 'email:' || e.email
    left join owners as by_device on by_device.node = 'device_id:' || e.anonymous_id
)

select * from final
