-- Orders with the customer who placed them (null when a guest left no usable identifier),
-- incrementally: a run reads only rows ingested since the last one (a new version of an
-- order, a refund or a cancellation, replaces the old one) and re-resolves the customer of
-- the orders whose account or guest order changed owner.
{{ config(materialized=attiva.incremental_materialization(), unique_key='order_id', incremental_strategy=attiva.upsert_strategy()) }}

-- depends_on: {{ ref('int_identity__node_owners') }}
with new_rows as (
    select * from {{ ref('stg_shop__orders') }}
    {{ attiva.ingested_since_last_run() }}
),

latest as (
    select *, row_number() over (partition by order_id order by _ingested_at desc, _line desc) as version_rank
    from new_rows
),

{% if is_incremental() %}
moved as (
    select node from ({{ attiva.written_since_last_run(ref('int_identity__node_owners')) }}) as o
),
{% endif %}

columns as (
    select
        order_id, shop_customer_id, email, phone, ordered_at, status, total_amount, channel,
        utm_source, utm_medium, utm_campaign, coupon_code, _ingested_at
    from latest
    where version_rank = 1
    {% if is_incremental() %}
    union all
    select
        order_id, shop_customer_id, email, phone, ordered_at, status, total_amount, channel,
        utm_source, utm_medium, utm_campaign, coupon_code, _ingested_at
    from {{ this }}
    where order_id not in (select order_id from latest)
      and case
            when shop_customer_id is not null then 'shop_customer_id:' || shop_customer_id
            else 'guest_order_id:' || order_id
          end in (select node from moved)
    {% endif %}
),

{% if is_incremental() %}
needed_nodes as (
    select case
        when shop_customer_id is not null then 'shop_customer_id:' || shop_customer_id
        else 'guest_order_id:' || order_id
    end as node
    from columns
),
{% endif %}

owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where not is_shared {% if is_incremental() %}and node in (select node from needed_nodes){% endif %}
),

final as (
    select
        o.order_id,
        ow.customer_id,
        o.shop_customer_id, o.email, o.phone, o.ordered_at, o.status, o.total_amount, o.channel,
        o.utm_source, o.utm_medium, o.utm_campaign, o.coupon_code, o._ingested_at,
        {{ attiva.run_at() }} as _run_at
    from columns as o
    left join owners as ow
        on ow.node = case
            when o.shop_customer_id is not null then 'shop_customer_id:' || o.shop_customer_id
            else 'guest_order_id:' || o.order_id
        end
)

select * from final
