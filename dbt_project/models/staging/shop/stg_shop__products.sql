-- The latest version of each product, grouped by its id as the models read it, trimmed (ids load
-- as written: ' 42' is 42).
-- Latest: loaded last; within one load, from the later file (landing files sort by name, so the later
-- export), then the later line.
with source as (
    select * from {{ source('raw', 'shop_products') }}
),

latest as (
    select
        *,
        row_number() over (partition by trim(product_id) order by updated_at desc, _ingested_at desc, _file desc, _line desc) as version_rank
    from source
),

final as (
    select
        trim(product_id) as product_id,
        trim(sku) as sku,
        {{ attiva.clean_text('name') }} as product_name,
        lower(trim(category)) as category,
        lower(trim(subcategory)) as subcategory,
        {{ attiva.clean_text('brand') }} as brand,
        cast(price as {{ dbt.type_numeric() }}) as price,
        coalesce(is_active, true) as is_active,
        updated_at,
        _ingested_at
    from latest
    where version_rank = 1
)

select * from final
