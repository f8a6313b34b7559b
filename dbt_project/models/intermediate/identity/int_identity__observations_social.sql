-- What social sources show together, kept incrementally: a run reads only rows ingested since the last one.
-- A lead-ad form is anchored on its own id, like a guest order: it is nobody on its own, and joins whoever
-- else uses its email or phone (a new email makes a new customer); a lead with neither stays anonymous.
-- A social handle (platform:from_id) is anchored the same way, like a device: only the interactions in which
-- the person shared an email or phone (a direct message's quick reply) tie it to anyone, and a handle that
-- shares the identifiers of several people is shared (int_identity__nodes,
-- `identity_max_people_per_social_user_id`), so a few typed messages never merge two customers. Names are
-- not kept (null name_key): a name typed into an ad form on a phone, or a display name, does not tell two
-- people apart, so it never makes an email or phone look shared.
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
    union all
    select
        'social_user_id:' || social_user_id,
        cast(null as {{ dbt.type_string() }}),
        'social_interactions',
        occurred_at,
        occurred_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}),
        _ingested_at
    from (select * from {{ ref('stg_social__interactions') }} {{ attiva.ingested_since_last_run() }}) as i
    where social_user_id is not null and (email is not null or phone is not null)
),

{{ attiva.merge_observations('records') }}

select * from merged
