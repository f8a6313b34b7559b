-- The catalogue with the promotion running at as_of, if any.
with products as (
    select * from {{ ref('stg_shop__products') }}
),

running_promotions as (
    select
        product_id,
        max(discount_pct) as discount_pct,
        max_by(promotion_name, discount_pct) as promotion_name,
        max_by(promotion_id, discount_pct) as promotion_id,
        max_by(starts_at, discount_pct) as promotion_starts_at,
        max_by(ends_at, discount_pct) as promotion_ends_at
    from {{ ref('stg_shop__promotions') }}
    where starts_at <= {{ attiva.as_of() }} and ends_at > {{ attiva.as_of() }}
    group by product_id
),

final as (
    select
        p.product_id,
        p.sku,
        p.product_name,
        p.category,
        p.subcategory,
        p.brand,
        p.price,
        p.is_active,
        rp.promotion_id is not null as is_on_promotion,
        rp.promotion_id,
        rp.promotion_name,
        rp.discount_pct,
        cast(round(p.price * (1 - coalesce(rp.discount_pct, 0) / 100.0), 2) as {{ dbt.type_numeric() }}) as current_price,
        rp.promotion_starts_at,
        rp.promotion_ends_at
    from products as p
    left join running_promotions as rp on p.product_id = rp.product_id
)

select * from final
