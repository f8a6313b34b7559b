-- Every identifier of every customer, normalized, with where and when it was seen.
-- The lookup table for everything that starts from an identifier: consent records,
-- email engagement, events, the personalization API and the destinations.
with customer_nodes as (
    select * from {{ ref('int_identity__customer_nodes') }}
),

nodes as (
    select * from {{ ref('int_identity__nodes') }}
),

observations as (
    select * from {{ ref('int_identity__observations') }}
),

seen as (
    select identifier_node as node, source, first_seen_at, last_seen_at from observations
    union all
    select anchor_node, source, first_seen_at, last_seen_at from observations
),

seen_by_source as (
    select node, source, min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at
    from seen
    group by node, source
),

final as (
    select
        cn.customer_id,
        n.identifier_type,
        n.identifier_value,
        s.source,
        s.first_seen_at,
        s.last_seen_at,
        cn.is_shared
    from customer_nodes as cn
    inner join nodes as n on cn.node = n.node
    inner join seen_by_source as s on cn.node = s.node
)

select * from final
