with source as (
    select * from {{ source('raw', 'shop_order_items') }}
),

latest as (
    select
        *,
        row_number() over (partition by order_item_id order by _ingested_at desc, _line desc) as version_rank
    from source
),

final as (
    select
        trim(order_item_id) as order_item_id,
        trim(order_id) as order_id,
        trim(product_id) as product_id,
        quantity,
        cast(unit_price as {{ dbt.type_numeric() }}) as unit_price,
        cast(quantity * unit_price as {{ dbt.type_numeric() }}) as line_amount,
        _ingested_at
    from latest
    where version_rank = 1 and quantity > 0
)

select * from final
