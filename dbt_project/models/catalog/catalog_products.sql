-- The product catalog the ad platforms show in dynamic ads (Meta's catalog, Google Merchant Center): one
-- row per product on sale, with the promotion running at as_of as its sale price and that promotion's
-- dates. The syncs keep each platform's catalog a mirror of it (docs/destinations/meta-catalog.md).
-- Vendor-neutral: amounts as numbers with their currency, dates as timestamps; each destination spells
-- them its own way. A product the catalogue withdraws (is_active false) leaves, and the platforms delete it.
with products as (
    select * from {{ ref('products') }}
    where is_active and price > 0
),

final as (
    select
        product_id,
        product_name as title,
        {{ dbt.concat(["product_name", "' ('", "category", "coalesce(' / ' || subcategory, '')", "')'"]) }} as description,
        brand,
        -- The shop exports no stock levels: a product on sale is in stock.
        'in stock' as availability,
        'new' as condition,
        cast(price as {{ dbt.type_numeric() }}) as price,
        case when is_on_promotion and current_price < price
             then cast(current_price as {{ dbt.type_numeric() }}) end as sale_price,
        case when is_on_promotion and current_price < price then promotion_starts_at end as sale_starts_at,
        case when is_on_promotion and current_price < price then promotion_ends_at end as sale_ends_at,
        '{{ var("conversions_currency") }}' as currency,
        replace('{{ var("catalog_product_url") }}', '{product_id}', product_id) as link,
        replace('{{ var("catalog_image_url") }}', '{product_id}', product_id) as image_link
    from products
)

select * from final
