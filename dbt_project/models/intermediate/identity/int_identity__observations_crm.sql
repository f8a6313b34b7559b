-- What CRM contacts show together (every version of a contact), kept incrementally:
-- a run reads only contacts ingested since the last one.
{{ config(materialized=attiva.incremental_materialization(), unique_key='observation_key', incremental_strategy=attiva.upsert_strategy()) }}

with records as (
    select
        'crm_contact_id:' || contact_id as anchor_node,
        {{ attiva.name_key('first_name', 'last_name') }} as name_key,
        'crm' as source,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id,
        _ingested_at
    from {{ ref('stg_crm__contacts') }}
    {{ attiva.ingested_since_last_run() }}
),

{{ attiva.merge_observations('records') }}

select * from merged
