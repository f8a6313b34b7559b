{{ config(materialized='incremental', unique_key='order_item_id', incremental_strategy=attiva.upsert_strategy()) }}

select * from {{ ref('stg_shop__order_items') }}
{{ attiva.ingested_since_last_run() }}
