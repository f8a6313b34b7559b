-- Which customer each identifier belongs to, kept incrementally (int_identity__customer_nodes
-- is the current mapping). A customer is a connected component holding at least one
-- durable identifier (CRM contact, shop account, email, phone); devices and guest orders
-- alone are not people we can reach. The customer_id is derived from the component's
-- oldest durable identifier (first seen, then by value), so it stays the same across runs
-- while that identifier stays with the person, whatever else joins them later.
-- Shared identifiers belong to every customer whose records carry them.
--
-- A run rewrites the identifiers whose component was recomputed since its last run, and
-- the shared identifiers seen with them. A mapping that ended leaves a row with no
-- customer_id and the customer it had in `removed_customer_id`: downstream, that customer
-- has to be recomputed (or dropped) too.
{{ config(materialized=attiva.incremental_materialization(), unique_key='node', incremental_strategy=attiva.upsert_strategy()) }}

with nodes as (
    select node, node_number, identifier_type, first_seen_at from {{ ref('int_identity__nodes') }}
),

components as (
    select n.node, c.component, c.is_shared, c._run_at
    from {{ ref('int_identity__components') }} as c
    inner join nodes as n on c.node_number = n.node_number
),

observations as (
    select anchor_node, identifier_node from {{ ref('int_identity__observations') }}
),

{% if is_incremental() %}
recomputed as (
    select node from components where _run_at > {{ attiva.last_run_at() }}
),

shared_seen_with_recomputed as (
    select o.identifier_node as node
    from observations as o
    inner join components as s on o.identifier_node = s.node and s.is_shared
    where o.anchor_node in (select node from recomputed)
    union
    select o.anchor_node
    from observations as o
    inner join components as s on o.anchor_node = s.node and s.is_shared
    where o.identifier_node in (select node from recomputed)
),

affected as (
    select node from recomputed
    union
    select node from shared_seen_with_recomputed
),
{% endif %}

labelled as (
    select c.node, c.component, n.identifier_type, n.first_seen_at
    from components as c
    inner join nodes as n on c.node = n.node
    where c.component is not null
    {% if is_incremental() %}and c.node in (select node from affected){% endif %}
),

founders as (
    select component, node as founder_node
    from (
        select
            component,
            node,
            row_number() over (partition by component order by first_seen_at, node) as founder_rank
        from labelled
        where identifier_type in ('crm_contact_id', 'shop_customer_id', 'email', 'phone')
    ) as ranked
    where founder_rank = 1
),

unshared as (
    select l.node, 'cus_' || substr({{ dbt.hash('f.founder_node') }}, 1, 16) as customer_id, false as is_shared
    from labelled as l
    inner join founders as f on l.component = f.component
),

-- the owners shared identifiers are matched against: the new ones, and the unchanged rest
owners as (
    select node, customer_id from unshared
    {% if is_incremental() %}
    union all
    select node, customer_id from {{ this }}
    where not is_shared and customer_id is not null and node not in (select node from affected)
    {% endif %}
),

shared_nodes as (
    select node from components where is_shared
    {% if is_incremental() %}and node in (select node from affected){% endif %}
),

shared as (
    select o.identifier_node as node, u.customer_id, true as is_shared
    from observations as o
    inner join shared_nodes as s on o.identifier_node = s.node
    inner join owners as u on o.anchor_node = u.node
    union
    select o.anchor_node as node, u.customer_id, true as is_shared
    from observations as o
    inner join shared_nodes as s on o.anchor_node = s.node
    inner join owners as u on o.identifier_node = u.node
),

current_owners as (
    select node, customer_id, is_shared from unshared
    union all
    select node, customer_id, is_shared from shared
),

final as (
    select node, customer_id, is_shared, cast(null as {{ dbt.type_string() }}) as removed_customer_id,
           {{ attiva.run_at() }} as _run_at
    from current_owners
    {% if is_incremental() %}
    union all
    -- mappings that ended (and, once more, the ones recorded as ended before)
    select t.node, cast(null as {{ dbt.type_string() }}), t.is_shared, coalesce(t.customer_id, t.removed_customer_id),
           {{ attiva.run_at() }}
    from {{ this }} as t
    where t.node in (select node from affected)
      and not exists (
          select 1 from current_owners as c
          where c.node = t.node and c.customer_id = coalesce(t.customer_id, t.removed_customer_id)
      )
    {% endif %}
)

select * from final
