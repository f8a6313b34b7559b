-- The graph used to merge people: both directions of every observation between two
-- unshared identifiers (an anchor's observation of itself is its self-loop). A view for
-- inspection: int_identity__components derives the edges of the region it recomputes.
{{ config(materialized='view') }}

with observations as (
    select * from {{ ref('int_identity__observations_with_matches') }}
),

nodes as (
    select * from {{ ref('int_identity__nodes') }}
),

linked as (
    select distinct a.node_number as a, b.node_number as b
    from observations as o
    inner join nodes as a on o.anchor_node = a.node
    inner join nodes as b on o.identifier_node = b.node
    where not a.is_shared and not b.is_shared
),

final as (
    select a as node_number, b as neighbour_number from linked
    union
    select b, a from linked
)

select * from final
