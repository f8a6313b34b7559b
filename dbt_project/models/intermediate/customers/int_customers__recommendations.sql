-- For each customer, the products worth suggesting that they have not bought yet:
-- first what goes with what they bought (product_affinity), then the bestsellers of
-- their favourite category. Only active products. (The rows of customer_recommendations.)
-- Incremental: a run recomputes the affected customers (int_customers__affected), or
-- everyone when orders, products or as_of changed, since every list depends on them.

-- depends_on: {{ ref('int_customers__affected') }}
-- depends_on: {{ ref('int_orders') }}
-- depends_on: {{ ref('int_order_items') }}
-- depends_on: {{ ref('stg_shop__products') }}
-- depends_on: {{ ref('int_customers__profile') }}
with
{% if is_incremental() %}
affected_customers as (
    {{ attiva.affected_customers() }}
    {%- if attiva.order_inputs_changed() %}
    union
    select customer_id from {{ ref('int_customers__profile') }}
    {%- endif %}
),
{% endif %}

bought as (
    select distinct customer_id, product_id
    from {{ ref('order_items') }}
    where is_completed and customer_id is not null and ordered_at <= {{ attiva.as_of() }}
    {{- attiva.only_affected() }}
),

active_products as (
    select product_id, category from {{ ref('products') }} where is_active
),

goes_with as (
    select b.customer_id, a.related_product_id as product_id, sum(a.lift * a.confidence) as score
    from bought as b
    inner join {{ ref('product_affinity') }} as a on b.product_id = a.product_id and a.affinity_rank <= 10
    group by b.customer_id, a.related_product_id
),

bestsellers as (
    select category, product_id, orders, row_number() over (partition by category order by orders desc, product_id) as seller_rank
    from (
        select p.category, i.product_id, count(distinct i.order_id) as orders
        from {{ ref('order_items') }} as i
        inner join active_products as p on i.product_id = p.product_id
        where i.is_completed and i.ordered_at <= {{ attiva.as_of() }}
        group by p.category, i.product_id
    ) as counted
),

in_favourite_category as (
    select f.customer_id, b.product_id, cast(1 as double) / (10 + b.seller_rank) as score
    from {{ ref('int_customers__favourites') }} as f
    inner join bestsellers as b on f.favourite_category = b.category and b.seller_rank <= {{ var('recommendations_per_customer') * 2 }}
    where 1 = 1 {{ attiva.only_affected('f.customer_id') }}
),

-- Each source keeps only its best `recommendations_per_customer` eligible products per
-- customer: a product outside them is outranked by that many products of its own source,
-- whose final scores can only be higher, so it could never make the final list either.
eligible as (
    select c.*, row_number() over (partition by c.customer_id, c.reason order by c.score desc, c.product_id) as source_rank
    from (
        select customer_id, product_id, score, 'goes_with_purchases' as reason from goes_with
        union all
        select customer_id, product_id, score, 'popular_in_favourite_category' from in_favourite_category
    ) as c
    inner join active_products as p on c.product_id = p.product_id
    where not exists (select 1 from bought as b where b.customer_id = c.customer_id and b.product_id = c.product_id)
),

candidates as (
    select customer_id, product_id, score, reason from eligible where source_rank <= {{ var('recommendations_per_customer') }}
),

best_reason as (
    select customer_id, product_id, max(score) as score, max_by(reason, score) as reason
    from candidates
    group by customer_id, product_id
),

ranked as (
    select *, row_number() over (partition by customer_id order by score desc, product_id) as recommendation_rank
    from best_reason
),

computed as (
    select customer_id, recommendation_rank, product_id, cast(score as double) as score, reason
    from ranked
    where recommendation_rank <= {{ var('recommendations_per_customer') }}
),

inputs as (
    select {{ attiva.order_inputs_ingested_at() }} as _inputs_ingested_at
),

final as (
    select r.*, i._inputs_ingested_at, {{ attiva.as_of() }} as _as_of
    from (
        {{ attiva.per_customer_rows('computed', ['recommendation_rank', 'product_id', 'score', 'reason']) }}
    ) as r
    cross join inputs as i
)

select * from final
