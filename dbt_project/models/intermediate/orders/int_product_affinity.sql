-- Products bought together: for each product, the products that appear in the same
-- completed orders more often than chance (lift > 1), best first. (The rows of the
-- product_affinity mart.) Statistics over every order: recomputed whole when orders,
-- products or as_of changed since the last run, else kept as they are.
{{ config(materialized=attiva.incremental_materialization(), incremental_strategy='append',
          pre_hook="{% if attiva.order_inputs_changed() %}delete from {{ this }}{% endif %}") }}

-- depends_on: {{ ref('int_orders') }}
-- depends_on: {{ ref('int_order_items') }}
-- depends_on: {{ ref('stg_shop__products') }}
with order_products as (
    select distinct order_id, product_id
    from {{ ref('order_items') }}
    where is_completed and ordered_at <= {{ attiva.as_of() }}
),

-- Very large baskets (wholesale orders) pair everything with everything: leave them out.
basket_sizes as (
    select order_id, count(*) as products_in_order from order_products group by order_id
),

baskets as (
    select op.order_id, op.product_id
    from order_products as op
    inner join basket_sizes as bs on op.order_id = bs.order_id
    where bs.products_in_order between 2 and 20
),

total as (
    select count(distinct order_id) as orders from order_products
),

product_orders as (
    select product_id, count(*) as orders from order_products group by product_id
),

pairs as (
    select a.product_id, b.product_id as related_product_id, count(*) as co_orders
    from baskets as a
    inner join baskets as b on a.order_id = b.order_id and a.product_id <> b.product_id
    group by a.product_id, b.product_id
    having count(*) >= {{ var('affinity_min_co_orders') }}
),

scored as (
    select
        p.product_id,
        p.related_product_id,
        p.co_orders,
        -- ratios in double: a 1.0 literal is a decimal on Spark, whose division keeps 6 decimals
        cast(p.co_orders as double) / t.orders as support,
        cast(p.co_orders as double) / pa.orders as confidence,
        cast(p.co_orders as double) * t.orders / (pa.orders * pb.orders) as lift
    from pairs as p
    cross join total as t
    inner join product_orders as pa on p.product_id = pa.product_id
    inner join product_orders as pb on p.related_product_id = pb.product_id
),

ranked as (
    select *, row_number() over (partition by product_id order by lift desc, co_orders desc, related_product_id) as affinity_rank
    from scored
    where lift > 1
),

final as (
    select
        product_id, related_product_id, affinity_rank, co_orders, support, confidence, lift,
        {{ attiva.order_inputs_ingested_at() }} as _inputs_ingested_at,
        {{ attiva.as_of() }} as _as_of
    from ranked
    where affinity_rank <= 20
    {%- if is_incremental() and not attiva.order_inputs_changed() %}
      and 1 = 0  -- nothing changed: keep the rows as they are
    {%- endif %}
)

select * from final
