-- Every time a source record shows two identifiers together: (anchor, identifier).
-- The anchor is the record's own id (CRM contact, shop account, guest order, device);
-- each observation is an edge of the identity graph. Placeholders and malformed values
-- were already nulled by staging, so they never appear here and never link anyone.
-- CRM contacts, shop accounts and events only ever add observations, so they are kept
-- incrementally (int_identity__observations_<source>); orders are read whole because
-- an order names its account's current holder, which a new account version can change.

-- An order placed from an account names the account holder, so a family phone typed at
-- checkout counts as used by both people and merges neither.
with account_names as (
    select shop_customer_id, {{ attiva.name_key('first_name', 'last_name') }} as name_key
    from {{ ref('stg_shop__customers') }}
    where is_latest_version
),

orders as (
    select
        case
            when o.shop_customer_id is not null then 'shop_customer_id:' || o.shop_customer_id
            else 'guest_order_id:' || o.order_id
        end as anchor_node,
        a.name_key,
        'orders' as source,
        min(o.ordered_at) as first_seen_at,
        max(o.ordered_at) as last_seen_at,
        o.email,
        o.phone
    from {{ ref('stg_shop__orders') }} as o
    left join account_names as a on o.shop_customer_id = a.shop_customer_id
    group by 1, 2, 3, 6, 7
),

order_observations as (
    select anchor_node, anchor_node as identifier_node, name_key, source, first_seen_at, last_seen_at
    from orders
    union all
    select anchor_node, 'email:' || email, name_key, source, first_seen_at, last_seen_at
    from orders where email is not null
    union all
    select anchor_node, 'phone:' || phone, name_key, source, first_seen_at, last_seen_at
    from orders where phone is not null
),

final as (
    select anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at
    from {{ ref('int_identity__observations_crm') }}
    union all
    select anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at
    from {{ ref('int_identity__observations_shop') }}
    union all
    select anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at
    from {{ ref('int_identity__observations_events') }}
    union all
    select anchor_node, identifier_node, name_key, source, min(first_seen_at), max(last_seen_at)
    from order_observations
    group by anchor_node, identifier_node, name_key, source
)

select * from final
