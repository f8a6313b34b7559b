{# New rows only: everything ingested after the newest row already in this model. #}
{% macro ingested_since_last_run(column='_ingested_at') -%}
    {%- if is_incremental() -%}
        where {{ column }} > (select coalesce(max({{ column }}), cast('1900-01-01' as timestamp)) from {{ this }})
    {%- endif -%}
{%- endmacro %}

{# How an incremental model replaces rows that share a key: merge where the engine has it. #}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy', 'attiva')()) }}
{%- endmacro %}
{% macro default__upsert_strategy() -%}delete+insert{%- endmacro %}
{% macro spark__upsert_strategy() -%}merge{%- endmacro %}

{# Identity observations of one source, kept incrementally: `records` (a CTE with
   anchor_node, name_key, source, first_seen_at, last_seen_at, email, phone, device_id,
   _ingested_at) holds only the rows ingested since the last run; each (anchor, identifier,
   name, source) they show is merged with what the model already holds, widening its
   first/last sighting. min and max merge exactly, so the result equals a full rebuild. #}
{% macro merge_observations(records) -%}
unpivoted as (
    select anchor_node, anchor_node as identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }}
    union all
    select anchor_node, 'email:' || email, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }} where email is not null
    union all
    select anchor_node, 'phone:' || phone, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }} where phone is not null
    union all
    select anchor_node, 'device_id:' || device_id, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }} where device_id is not null
),

grouped as (
    select
        {{ dbt.hash("anchor_node || '|' || identifier_node || '|' || coalesce(name_key, '') || '|' || source") }}
            as observation_key,
        anchor_node,
        identifier_node,
        name_key,
        source,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        max(_ingested_at) as _ingested_at
    from unpivoted
    group by anchor_node, identifier_node, name_key, source
),

merged as (
    {%- if is_incremental() %}
    select
        g.observation_key,
        g.anchor_node,
        g.identifier_node,
        g.name_key,
        g.source,
        case when t.first_seen_at is null or g.first_seen_at < t.first_seen_at then g.first_seen_at
             else t.first_seen_at end as first_seen_at,
        case when t.last_seen_at is null or g.last_seen_at > t.last_seen_at then g.last_seen_at
             else t.last_seen_at end as last_seen_at,
        g._ingested_at
    from grouped as g
    left join {{ this }} as t on g.observation_key = t.observation_key
    {%- else %}
    select * from grouped
    {%- endif %}
)
{%- endmacro %}
