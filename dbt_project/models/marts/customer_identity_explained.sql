-- Why each customer is who they are: the records that make them up, the edges that joined
-- those records, and the identifiers set aside (shared by more people than their type
-- allows, or a placeholder/malformed value nulled in staging). One row per
-- (record, identifier, source); `attiva identity CUSTOMER` prints it.
--   role 'record'    a record of the customer: CRM contact, shop account, guest order, device
--   role 'link'      record -> identifier, both the customer's: this edge joined them
--   role 'set_aside' record -> identifier that merged no one: `reason` says why; for a shared
--                    identifier `people` is how many people it links and `max_people` the limit
-- A view: read it for one customer at a time.
{{ config(materialized='view') }}

with owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where not is_shared
),

nodes as (
    select node, identifier_type, identifier_value, is_shared, distinct_people, max_people
    from {{ ref('int_identity__nodes') }}
),

observations as (
    select anchor_node, identifier_node, source, first_seen_at, last_seen_at
    from {{ ref('int_identity__observations_with_matches') }}
),

-- each observation with the customer on its unshared side (both sides are the same
-- customer when neither is shared: they are in one component)
owned as (
    select
        coalesce(a.customer_id, i.customer_id) as customer_id,
        case when a.customer_id is not null then o.anchor_node else o.identifier_node end as own_node,
        case when a.customer_id is not null then o.identifier_node else o.anchor_node end as other_node,
        o.anchor_node = o.identifier_node as is_record,
        o.source,
        o.first_seen_at,
        o.last_seen_at
    from observations as o
    left join owners as a on o.anchor_node = a.node
    left join owners as i on o.identifier_node = i.node
    where a.customer_id is not null or i.customer_id is not null
),

edges as (
    select
        w.customer_id,
        mine.identifier_type as record_type,
        mine.identifier_value as record_id,
        case when w.is_record then 'record' when other.is_shared then 'set_aside' else 'link' end as role,
        case when not w.is_record then other.identifier_type end as identifier_type,
        case when not w.is_record then other.identifier_value end as identifier_value,
        case when other.is_shared then 'shared' end as reason,
        case when other.is_shared then other.distinct_people end as people,
        case when other.is_shared then other.max_people end as max_people,
        w.source,
        min(w.first_seen_at) as first_seen_at,
        max(w.last_seen_at) as last_seen_at
    from owned as w
    inner join nodes as mine on w.own_node = mine.node
    inner join nodes as other on w.other_node = other.node
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
),

-- values staging nulled (the fact is kept, never the value)
set_aside_values as (
    select 'crm_contact_id:' || contact_id as node, 'crm' as source, email_set_aside, phone_set_aside,
           updated_at as seen_at
    from {{ ref('stg_crm__contacts') }}
    union all
    select 'shop_customer_id:' || shop_customer_id, 'shop', email_set_aside, phone_set_aside, updated_at
    from {{ ref('stg_shop__customers') }}
    union all
    select
        case when shop_customer_id is not null then 'shop_customer_id:' || shop_customer_id
             else 'guest_order_id:' || order_id end,
        'orders', email_set_aside, phone_set_aside, ordered_at
    from {{ ref('stg_shop__orders') }}
),

unpivoted as (
    select node, source, 'email' as identifier_type, email_set_aside as reason, seen_at
    from set_aside_values where email_set_aside is not null
    union all
    select node, source, 'phone', phone_set_aside, seen_at
    from set_aside_values where phone_set_aside is not null
),

placeholders as (
    select
        ow.customer_id,
        n.identifier_type as record_type,
        n.identifier_value as record_id,
        'set_aside' as role,
        u.identifier_type,
        cast(null as {{ dbt.type_string() }}) as identifier_value,
        u.reason,
        cast(null as {{ dbt.type_bigint() }}) as people,
        cast(null as {{ dbt.type_bigint() }}) as max_people,
        u.source,
        min(u.seen_at) as first_seen_at,
        max(u.seen_at) as last_seen_at
    from unpivoted as u
    inner join owners as ow on u.node = ow.node
    inner join nodes as n on u.node = n.node
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
),

final as (
    select * from edges
    union all
    select * from placeholders
)

select * from final
