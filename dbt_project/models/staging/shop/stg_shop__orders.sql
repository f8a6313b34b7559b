-- Every order row as landed (a refund arrives as a new version of the order), identifiers
-- normalized. int_orders keeps the latest version of each.
with source as (
    select * from {{ source('raw', 'shop_orders') }}
),

final as (
    select
        trim(order_id) as order_id,
        nullif(trim(shop_customer_id), '') as shop_customer_id,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        {{ attiva.email_set_aside('email') }} as email_set_aside,
        {{ attiva.phone_set_aside('phone') }} as phone_set_aside,
        ordered_at,
        lower(trim(status)) as status,
        cast(total_amount as {{ dbt.type_numeric() }}) as total_amount,
        lower(trim(channel)) as channel,
        lower(trim(utm_source)) as utm_source,
        lower(trim(utm_medium)) as utm_medium,
        lower(trim(utm_campaign)) as utm_campaign,
        upper(trim(coupon_code)) as coupon_code,
        {{ attiva.clean_text('shipping_first_name') }} as shipping_first_name,
        {{ attiva.clean_text('shipping_last_name') }} as shipping_last_name,
        {{ attiva.clean_text('shipping_address') }} as shipping_address,
        {{ attiva.clean_text('shipping_city') }} as shipping_city,
        trim(shipping_postal_code) as shipping_postal_code,
        _ingested_at,
        _line
    from source
)

select * from final
