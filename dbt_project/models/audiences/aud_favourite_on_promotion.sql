-- "Your favourite coffee blend is on offer": the customer's favourite product has a
-- promotion running at as_of.
select
    {{ attiva.audience_contact_columns() }},
    c.favourite_product_id,
    p.product_name as favourite_product_name,
    p.discount_pct,
    p.current_price,
    p.promotion_ends_at
from {{ ref('customers') }} as c
inner join {{ ref('products') }} as p on c.favourite_product_id = p.product_id
where p.is_on_promotion and p.is_active
