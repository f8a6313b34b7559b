{{ config(materialized='incremental', unique_key='order_item_id', incremental_strategy=attiva.upsert_strategy()) }}

with new_rows as (
    select * from {{ ref('stg_shop__order_items') }}
    {{ attiva.ingested_since_last_run() }}
),

latest as (
    select *, row_number() over (partition by order_item_id order by _ingested_at desc, _line desc) as version_rank
    from new_rows
),

final as (
    select order_item_id, order_id, product_id, quantity, unit_price, line_amount, _ingested_at
    from latest
    where version_rank = 1
)

select * from final
