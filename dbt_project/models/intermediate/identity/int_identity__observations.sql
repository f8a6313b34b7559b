-- Every time a source record shows two identifiers together: (anchor, identifier).
-- The anchor is the record's own id (CRM contact, shop account, guest order, device);
-- each observation is an edge of the identity graph. Placeholders and malformed values
-- were already nulled by staging, so they never appear here and never link anyone.
with crm as (
    select
        'crm_contact_id:' || contact_id as anchor_node,
        {{ attiva.name_key('first_name', 'last_name') }} as name_key,
        'crm' as source,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id
    from {{ ref('stg_crm__contacts') }}
),

shop as (
    select
        'shop_customer_id:' || shop_customer_id as anchor_node,
        {{ attiva.name_key('first_name', 'last_name') }} as name_key,
        'shop' as source,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id
    from {{ ref('stg_shop__customers') }}
),

orders as (
    select
        case
            when shop_customer_id is not null then 'shop_customer_id:' || shop_customer_id
            else 'guest_order_id:' || order_id
        end as anchor_node,
        cast(null as {{ dbt.type_string() }}) as name_key,
        'orders' as source,
        min(ordered_at) as first_seen_at,
        max(ordered_at) as last_seen_at,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as device_id
    from {{ ref('stg_shop__orders') }}
    group by 1, 2, 3, 6, 7, 8
),

-- Events only tie identifiers when they carry at least two of them (a login, an identify,
-- a form submitted from a known device). One row per distinct combination.
events as (
    select
        case
            when shop_customer_id is not null then 'shop_customer_id:' || shop_customer_id
            else 'device_id:' || anonymous_id
        end as anchor_node,
        {{ attiva.name_key('first_name', 'last_name') }} as name_key,
        'events' as source,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        email,
        phone,
        case when shop_customer_id is not null then anonymous_id end as device_id
    from {{ ref('stg_events__events') }}
    where (shop_customer_id is not null or anonymous_id is not null)
      and (
          (shop_customer_id is not null and anonymous_id is not null)
          or email is not null
          or phone is not null
      )
    group by 1, 2, 3, 6, 7, 8
),

records as (
    select * from crm
    union all select * from shop
    union all select * from orders
    union all select * from events
),

observations as (
    select anchor_node, anchor_node as identifier_node, name_key, source, first_seen_at, last_seen_at
    from records
    union all
    select anchor_node, 'email:' || email, name_key, source, first_seen_at, last_seen_at
    from records where email is not null
    union all
    select anchor_node, 'phone:' || phone, name_key, source, first_seen_at, last_seen_at
    from records where phone is not null
    union all
    select anchor_node, 'device_id:' || device_id, name_key, source, first_seen_at, last_seen_at
    from records where device_id is not null
),

final as (
    select
        anchor_node,
        identifier_node,
        name_key,
        source,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from observations
    group by 1, 2, 3, 4
)

select * from final
