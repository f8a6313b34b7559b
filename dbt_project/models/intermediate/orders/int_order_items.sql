-- Order lines with their order's customer and date, incrementally: a run reads the lines
-- ingested since the last one (a new version of a line replaces the old one) and refreshes
-- the lines of the orders int_orders rewrote since (new version, customer re-resolved,
-- or the order arriving after its lines).
{{ config(materialized=attiva.incremental_materialization(), unique_key='order_item_id', incremental_strategy=attiva.upsert_strategy()) }}

with new_rows as (
    select * from {{ ref('stg_shop__order_items') }}
    {{ attiva.ingested_since_last_run() }}
),

latest as (
    select *, row_number() over (partition by order_item_id order by _ingested_at desc, _line desc) as version_rank
    from new_rows
),

lines as (
    select order_item_id, order_id, product_id, quantity, unit_price, line_amount, _ingested_at
    from latest
    where version_rank = 1
    {% if is_incremental() %}
    union all
    select order_item_id, order_id, product_id, quantity, unit_price, line_amount, _ingested_at
    from {{ this }}
    where order_id in (select order_id from ({{ attiva.written_since_last_run(ref('int_orders')) }}) as o)
      and order_item_id not in (select order_item_id from latest)
    {% endif %}
),

orders as (
    select order_id, customer_id, ordered_at, status from {{ ref('int_orders') }}
),

final as (
    select
        l.order_item_id,
        l.order_id,
        o.customer_id,
        o.ordered_at,
        o.status = 'completed' as is_completed,
        o.order_id is not null as has_order,
        l.product_id,
        l.quantity,
        l.unit_price,
        l.line_amount,
        l._ingested_at,
        {{ attiva.run_at() }} as _run_at
    from lines as l
    left join orders as o on l.order_id = o.order_id
)

select * from final
