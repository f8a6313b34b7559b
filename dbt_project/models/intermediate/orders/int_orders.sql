-- Orders, incrementally: a new version of an order (a refund, a cancellation) replaces
-- the old one; untouched orders are not rewritten.
{{ config(materialized='incremental', unique_key='order_id', incremental_strategy=attiva.upsert_strategy()) }}

select * from {{ ref('stg_shop__orders') }}
{{ attiva.ingested_since_last_run() }}
