-- Connected components of the identity graph by min-label propagation: each round every
-- node takes the smallest label among itself and its neighbours. Plain SQL in a fixed
-- number of rounds (no recursive CTE), so it runs on any engine. One extra round tells
-- whether the labels stopped moving (`is_converged`); the data test
-- `assert_identity_graph_converged` fails the build if they did not.
--
-- Kept incrementally: a run recomputes only the region the changes can reach, which is
-- closed, so its components come out exactly as in a full rebuild:
--   * the identifiers re-derived since the last run (int_identity__nodes),
--   * the records of probable matches written since the last run,
--   * plus every neighbour of one whose shared status flipped (its links appear or vanish),
--   * plus every member of the components those belonged to (a component can split).
-- Every identifier has a row (by number: no identifier values here); those with no link to
-- an unshared one have no component.
{{ config(materialized=attiva.incremental_materialization(), unique_key='node_number', incremental_strategy=attiva.upsert_strategy()) }}

with nodes as (
    select node, node_number, is_shared from {{ ref('int_identity__nodes') }}
),

observations as (
    select anchor_node, identifier_node from {{ ref('int_identity__observations_with_matches') }}
),

{% if is_incremental() %}
changed as (
    select node, node_number, is_shared from ({{ attiva.written_since_last_run(ref('int_identity__nodes')) }}) as n
),

flipped as (
    select c.node from changed as c inner join {{ this }} as t on c.node_number = t.node_number
    where c.is_shared <> t.is_shared
),

-- the records of probable matches that joined or left the graph since the last run: the
-- rules' nodes above never see them (int_identity__observations_with_matches). Records a
-- shared identifier joins under one name need nothing here: a change to any of them
-- re-derives that identifier and all its records (int_identity__nodes), so both ends are seeds.
matched as (
    select anchor_node as node from {{ ref('int_identity__observations_with_matches') }}
    where source = 'probable_match' and _run_at > {{ attiva.last_run_at() }}
    union
    select identifier_node from {{ ref('int_identity__observations_with_matches') }}
    where source = 'probable_match' and _run_at > {{ attiva.last_run_at() }}
),

seeds as (
    select node_number from changed
    union
    select node_number from nodes where node in (select node from matched)
    union
    select n.node_number from nodes as n
    where n.node in (
        select anchor_node from observations where identifier_node in (select node from flipped)
        union
        select identifier_node from observations where anchor_node in (select node from flipped)
    )
),

region as (
    select node_number from seeds
    union
    select t.node_number from {{ this }} as t
    where t.component in (
        select s.component from {{ this }} as s
        where s.node_number in (select node_number from seeds) and s.component is not null
    )
),

region_nodes as (
    select * from nodes where node_number in (select node_number from region)
),
{% else %}
region_nodes as (
    select * from nodes
),
{% endif %}

linked as (
    select distinct a.node_number as a, b.node_number as b
    from observations as o
    inner join region_nodes as a on o.anchor_node = a.node
    inner join region_nodes as b on o.identifier_node = b.node
    where not a.is_shared and not b.is_shared
),

edges as (
    select a as node_number, b as neighbour_number from linked
    union
    select b, a from linked
),

labels_0 as (
    select distinct node_number, node_number as label from edges
),
{% for i in range(1, var('identity_max_iterations') + 2) %}
labels_{{ i }} as (
    select e.node_number, min(l.label) as label
    from edges as e
    inner join labels_{{ i - 1 }} as l on e.neighbour_number = l.node_number
    group by e.node_number
),
{% endfor %}
{%- set last = var('identity_max_iterations') %}
labels as (
    select l.node_number, l.label as component, l.label = c.label as is_converged
    from labels_{{ last }} as l
    inner join labels_{{ last + 1 }} as c on l.node_number = c.node_number
),

final as (
    select
        r.node_number,
        l.component,
        r.is_shared,
        coalesce(l.is_converged, true) as is_converged,
        {{ attiva.run_at() }} as _run_at
    from region_nodes as r
    left join labels as l on r.node_number = l.node_number
)

select * from final
