-- What shop accounts show together (every version of an account), kept incrementally:
-- a run reads only accounts ingested since the last one.
{{ config(materialized=attiva.incremental_materialization(), unique_key='observation_key', incremental_strategy=attiva.upsert_strategy()) }}

with records as (
    select
        'shop_customer_id:' || shop_customer_id as anchor_node,
        {{ attiva.name_key('first_name', 'last_name') }} as name_key,
        'shop' as source,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id,
        _ingested_at
    from {{ ref('stg_shop__customers') }}
    {{ attiva.ingested_since_last_run() }}
),

{{ attiva.merge_observations('records') }}

select * from merged
