-- Orders, incrementally: a run reads only rows ingested since the last one; a new version
-- of an order (a refund, a cancellation) replaces the old one.
{{ config(materialized='incremental', unique_key='order_id', incremental_strategy=attiva.upsert_strategy()) }}

with new_rows as (
    select * from {{ ref('stg_shop__orders') }}
    {{ attiva.ingested_since_last_run() }}
),

latest as (
    select *, row_number() over (partition by order_id order by _ingested_at desc, _line desc) as version_rank
    from new_rows
),

final as (
    select
        order_id, shop_customer_id, email, phone, ordered_at, status, total_amount, channel,
        utm_source, utm_medium, utm_campaign, coupon_code, _ingested_at
    from latest
    where version_rank = 1
)

select * from final
