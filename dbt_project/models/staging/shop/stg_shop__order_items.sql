-- Every order line as landed. int_order_items keeps the latest version of each.
with source as (
    select * from {{ source('raw', 'shop_order_items') }}
),

final as (
    select
        trim(order_item_id) as order_item_id,
        trim(order_id) as order_id,
        trim(product_id) as product_id,
        quantity,
        cast(unit_price as {{ dbt.type_numeric() }}) as unit_price,
        cast(quantity * unit_price as {{ dbt.type_numeric() }}) as line_amount,
        _ingested_at,
        _line
    from source
    where quantity > 0
)

select * from final
