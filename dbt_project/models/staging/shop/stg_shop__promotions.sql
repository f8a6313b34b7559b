-- The latest version of each promotion, grouped by its id as the models read it, trimmed (ids load
-- as written: ' 42' is 42).
-- Latest: loaded last; within one load, from the later file (landing files sort by name, so the later
-- export), then the later line.
with source as (
    select * from {{ source('raw', 'shop_promotions') }}
),

latest as (
    select
        *,
        row_number() over (partition by trim(promotion_id) order by _ingested_at desc, _file desc, _line desc) as version_rank
    from source
),

final as (
    select
        trim(promotion_id) as promotion_id,
        trim(product_id) as product_id,
        {{ attiva.clean_text('name') }} as promotion_name,
        discount_pct,
        starts_at,
        ends_at
    from latest
    where version_rank = 1 and ends_at > starts_at and discount_pct > 0 and discount_pct <= 100
)

select * from final
