-- Every identifier of every customer with where and when it was seen (the rows of the
-- customer_identifiers mart), kept incrementally: a run rewrites the identifiers whose
-- owner was rewritten since its last run (which includes every identifier whose sightings
-- changed: those are re-derived, so their component is recomputed).
{{ config(materialized=attiva.incremental_materialization(), unique_key='node', incremental_strategy=attiva.upsert_strategy(),
          post_hook="{{ attiva.drop_placeholders() }}") }}

-- depends_on: {{ ref('int_identity__node_owners') }}
with customer_nodes as (
    select * from {{ ref('int_identity__customer_nodes') }}
),

nodes as (
    select node, identifier_type, identifier_value from {{ ref('int_identity__nodes') }}
),

observations as (
    select * from {{ ref('int_identity__observations_with_matches') }}
),

{% if is_incremental() %}
affected as (
    select distinct node from ({{ attiva.written_since_last_run(ref('int_identity__node_owners')) }}) as o
),
{% endif %}

seen as (
    select identifier_node as node, source, first_seen_at, last_seen_at from observations
    {% if is_incremental() %}where identifier_node in (select node from affected){% endif %}
    union all
    select anchor_node, source, first_seen_at, last_seen_at from observations
    {% if is_incremental() %}where anchor_node in (select node from affected){% endif %}
),

seen_by_source as (
    select node, source, min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at
    from seen
    group by node, source
),

identifiers as (
    select
        cn.node,
        cn.customer_id,
        n.identifier_type,
        n.identifier_value,
        s.source,
        s.first_seen_at,
        s.last_seen_at,
        cn.is_shared,
        {{ attiva.run_at() }} as _run_at
    from customer_nodes as cn
    inner join nodes as n on cn.node = n.node
    inner join seen_by_source as s on cn.node = s.node
    {% if is_incremental() %}where cn.node in (select node from affected){% endif %}
),

final as (
    select * from identifiers
    {% if is_incremental() %}
    union all
    -- identifiers that no longer belong to anyone: a placeholder so their rows are deleted
    select a.node, cast(null as {{ dbt.type_string() }}), cast(null as {{ dbt.type_string() }}),
           cast(null as {{ dbt.type_string() }}), cast(null as {{ dbt.type_string() }}),
           cast(null as timestamp), cast(null as timestamp), cast(null as boolean), cast(null as timestamp)
    from affected as a
    where not exists (select 1 from identifiers as i where i.node = a.node)
    {% endif %}
)

select * from final
