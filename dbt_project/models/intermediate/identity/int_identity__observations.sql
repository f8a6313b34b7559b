-- Every time a source record shows two identifiers together: (anchor, identifier).
-- The anchor is the record's own id (CRM contact, shop account, guest order, device);
-- each observation is an edge of the identity graph. What the records show, and nothing
-- else: probabilistic matching reads the identifiers this says are shared (through
-- int_identity__nodes, built before it), so its own links join the graph after it
-- (int_identity__observations_with_matches), never in here. Placeholders and malformed values
-- were already nulled by staging, so they never appear here and never link anyone.
-- Kept incrementally: a run takes the observations the per-source models changed and
-- re-derives the order observations of the anchors with new orders or a new account
-- version (an order names its account's current holder, which a new version can change:
-- order observations are keyed without the name, so the new name replaces the old one).
-- Each row is stamped with the run that wrote it (`_run_at`), which is how the rest of
-- the identity graph finds what changed.
{{ config(materialized=attiva.incremental_materialization(), unique_key='observation_key', incremental_strategy=attiva.upsert_strategy()) }}

-- An order placed from an account names the account holder, so a family phone typed at
-- checkout counts as used by both people and merges neither. A guest order names whom it
-- ships to: Chiara's guest order with the family phone beside Fabio's account is two people.
with account_names as (
    select shop_customer_id, {{ attiva.name_key('first_name', 'last_name') }} as name_key
    from {{ ref('stg_shop__customers') }}
    where is_latest_version
),

all_orders as (
    select
        case
            when o.shop_customer_id is not null then 'shop_customer_id:' || o.shop_customer_id
            else 'guest_order_id:' || o.order_id
        end as anchor_node,
        o.shop_customer_id,
        case when o.shop_customer_id is null
             then {{ attiva.name_key('o.shipping_first_name', 'o.shipping_last_name') }} end as guest_name_key,
        o.email,
        o.phone,
        o.ordered_at,
        o._ingested_at
    from {{ ref('stg_shop__orders') }} as o
),

{% if is_incremental() %}
-- anchors whose order observations may have changed: new orders, new account versions
rederived_anchors as (
    select anchor_node from all_orders
    where _ingested_at > {{ attiva.max_timestamp('_ingested_at') }}
    union
    select 'shop_customer_id:' || shop_customer_id from {{ ref('stg_shop__customers') }}
    where _ingested_at > {{ attiva.max_timestamp('_ingested_at') }}
),
{% endif %}

orders as (
    select
        o.anchor_node,
        coalesce(a.name_key, o.guest_name_key) as name_key,
        'orders' as source,
        min(o.ordered_at) as first_seen_at,
        max(o.ordered_at) as last_seen_at,
        o.email,
        o.phone,
        max(o._ingested_at) as _ingested_at
    from all_orders as o
    left join account_names as a on o.shop_customer_id = a.shop_customer_id
    {% if is_incremental() %}
    where o.anchor_node in (select anchor_node from rederived_anchors)
    {% endif %}
    group by o.anchor_node, coalesce(a.name_key, o.guest_name_key), o.email, o.phone
),

order_observations as (
    select anchor_node, anchor_node as identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from orders
    union all
    select anchor_node, 'email:' || email, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from orders where email is not null
    union all
    select anchor_node, 'phone:' || phone, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from orders where phone is not null
),

order_rows as (
    select
        {{ dbt.hash("o.anchor_node || '|' || o.identifier_node || '|' || o.source") }} as observation_key,
        o.anchor_node,
        o.identifier_node,
        max(o.name_key) as name_key,
        o.source,
        min(o.first_seen_at) as first_seen_at,
        max(o.last_seen_at) as last_seen_at,
        max(o._ingested_at) as _ingested_at
    from order_observations as o
    group by o.anchor_node, o.identifier_node, o.source
),

source_rows as (
    select observation_key, anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ ref('int_identity__observations_crm') }}
    {{ attiva.ingested_since_last_run() }}
    union all
    select observation_key, anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ ref('int_identity__observations_shop') }}
    {{ attiva.ingested_since_last_run() }}
    union all
    select observation_key, anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ ref('int_identity__observations_events') }}
    {{ attiva.ingested_since_last_run() }}
    union all
    select observation_key, anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ ref('int_identity__observations_social') }}
    {{ attiva.ingested_since_last_run() }}
),

final as (
    select *, {{ attiva.run_at() }} as _run_at from source_rows
    union all
    select *, {{ attiva.run_at() }} as _run_at from order_rows
)

select * from final
