-- What events show together, kept incrementally: a run reads only events ingested since
-- the last one. Events only tie identifiers when they carry at least two of them (a login,
-- an identify, a form submitted from a known device).
{{ config(materialized=attiva.incremental_materialization(), unique_key='observation_key', incremental_strategy=attiva.upsert_strategy()) }}

with new_events as (
    select * from {{ ref('stg_events__events') }}
    {{ attiva.ingested_since_last_run() }}
),

records as (
    select
        case
            when shop_customer_id is not null then 'shop_customer_id:' || shop_customer_id
            else 'device_id:' || anonymous_id
        end as anchor_node,
        {{ attiva.name_key('first_name', 'last_name') }} as name_key,
        'events' as source,
        occurred_at as first_seen_at,
        occurred_at as last_seen_at,
        email,
        phone,
        case when shop_customer_id is not null then anonymous_id end as device_id,
        _ingested_at
    from new_events
    where (shop_customer_id is not null or anonymous_id is not null)
      and (
          (shop_customer_id is not null and anonymous_id is not null)
          or email is not null
          or phone is not null
      )
),

{{ attiva.merge_observations('records') }}

select * from merged
