-- What lead-ad form submissions show together, kept incrementally: a run reads only leads ingested since
-- the last one. A lead is anchored on its own id, like a guest order: it is nobody on its own, and joins
-- whoever else uses its email or phone (a new email makes a new customer); a lead with neither stays
-- anonymous. Its name is not kept (null name_key), as a guest order's: a name typed into an ad form on a
-- phone does not tell two people apart, so it never makes an email or phone look shared.
{{ config(materialized=attiva.incremental_materialization(), unique_key='observation_key', incremental_strategy=attiva.upsert_strategy()) }}

with records as (
    select
        'meta_lead_id:' || lead_id as anchor_node,
        cast(null as {{ dbt.type_string() }}) as name_key,
        'social_leads' as source,
        created_at as first_seen_at,
        created_at as last_seen_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id,
        _ingested_at
    from {{ ref('stg_social__leads') }}
    {{ attiva.ingested_since_last_run() }}
),

{{ attiva.merge_observations('records') }}

select * from merged
