-- Which customer each identifier belongs to. A customer is a connected component holding
-- at least one durable identifier (CRM contact, shop account, email, phone); devices and
-- guest orders alone are not people we can reach. The customer_id is derived from the
-- component's oldest durable identifier, so it stays the same across runs while that
-- identifier stays with the person, whatever else joins them later.
-- Shared identifiers belong to every customer whose records carry them.
with nodes as (
    select * from {{ ref('int_identity__nodes') }}
),

components as (
    select * from {{ ref('int_identity__components') }}
),

observations as (
    select * from {{ ref('int_identity__observations') }}
),

labelled as (
    select n.node, n.node_number, n.identifier_type, c.component
    from nodes as n
    inner join components as c on n.node_number = c.node_number
),

founders as (
    select component, min(node_number) as founder_number
    from labelled
    where identifier_type in ('crm_contact_id', 'shop_customer_id', 'email', 'phone')
    group by component
),

customer_ids as (
    select
        f.component,
        'cus_' || substr({{ dbt.hash('n.node') }}, 1, 16) as customer_id
    from founders as f
    inner join nodes as n on f.founder_number = n.node_number
),

unshared as (
    select l.node, ci.customer_id, false as is_shared
    from labelled as l
    inner join customer_ids as ci on l.component = ci.component
),

shared_nodes as (
    select node from nodes where is_shared
),

shared as (
    select distinct o.identifier_node as node, u.customer_id, true as is_shared
    from observations as o
    inner join shared_nodes as s on o.identifier_node = s.node
    inner join unshared as u on o.anchor_node = u.node
    union
    select distinct o.anchor_node as node, u.customer_id, true as is_shared
    from observations as o
    inner join shared_nodes as s on o.anchor_node = s.node
    inner join unshared as u on o.identifier_node = u.node
),

final as (
    select * from unshared
    union all
    select * from shared
)

select * from final
