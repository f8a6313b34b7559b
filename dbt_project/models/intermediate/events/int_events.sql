-- Events, each event id once (replayed events are ignored), loaded incrementally:
-- a run reads only what ingestion added since the previous run.
{{ config(materialized='incremental', unique_key='event_id', incremental_strategy=attiva.upsert_strategy()) }}

with new_events as (
    select * from {{ ref('stg_events__events') }}
    {{ attiva.ingested_since_last_run() }}
),

first_copy as (
    select
        *,
        row_number() over (partition by event_id order by _ingested_at, occurred_at) as copy_number
    from new_events
),

final as (
    select
        event_id, event_type, occurred_at, anonymous_id, shop_customer_id, email, phone, platform,
        session_id, product_id, quantity, url, form_name, lead_source, company, first_name, last_name,
        _ingested_at
    from first_copy
    where copy_number = 1
    {% if is_incremental() %}
      and event_id not in (select event_id from {{ this }})
    {% endif %}
)

select * from final
