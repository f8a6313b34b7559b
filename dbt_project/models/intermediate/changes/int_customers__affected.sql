-- The customers whose 360 has to be recomputed, one row per customer and run (an append-only
-- log; each per-customer model takes the rows written after its own last run). A customer
-- is affected when, since the log's previous run:
--   * their identifiers changed owner, or they lost one (int_identity__node_owners),
--   * they have new or re-resolved events or orders, new order lines,
--   * new consent records, email engagement, CRM contact or shop account versions,
--   * a product they bought or viewed changed,
--   * `as_of` moved across one of their events, orders or engagements, or moved a 30- or
--     90-day window across one (the windows the customer 360 counts in).
-- Every run also writes one marker row (no customer_id) holding the newest ingestion time
-- and the as_of it saw: the next run starts from there. A full refresh writes only the marker.
{{ config(materialized=attiva.incremental_materialization(), incremental_strategy='append') }}

{#- Where the previous run left off, read when the model runs, so the filters below are
    constants the engine can push into its scans. #}
{%- set previous = {'run_at': none, 'ingested_at': none, 'as_of': none, 'products_changed': false} -%}
{%- if execute and is_incremental() -%}
    {%- set row = run_query(
        "select max(_run_at), max(_ingested_at), max(case when _run_at = (select max(_run_at) from " ~ this
        ~ " where customer_id is null) then _as_of end) from " ~ this ~ " where customer_id is null").rows[0] -%}
    {%- do previous.update({'run_at': row[0], 'ingested_at': row[1], 'as_of': row[2]}) -%}
{%- endif -%}
{%- set since_run = "cast('" ~ (previous.run_at or '1900-01-01') ~ "' as timestamp)" -%}
{%- set since_ingested = "cast('" ~ (previous.ingested_at or '1900-01-01') ~ "' as timestamp)" -%}
{%- set as_of_moved = execute and is_incremental() and previous.as_of is not none
        and previous.as_of.strftime('%Y-%m-%d %H:%M:%S') != var('as_of', '') -%}
{%- if execute and is_incremental() -%}
    {%- set count = run_query("select count(*) from " ~ ref('stg_shop__products') ~ " where _ingested_at > " ~ since_ingested).columns[0].values()[0] -%}
    {%- do previous.update({'products_changed': count > 0}) -%}
{%- endif %}
{#- The bounds `as_of` moved between (either way): rows between them changed side. #}
{%- set low = "least(cast('" ~ previous.as_of ~ "' as timestamp), " ~ attiva.as_of() ~ ")" -%}
{%- set high = "greatest(cast('" ~ previous.as_of ~ "' as timestamp), " ~ attiva.as_of() ~ ")" -%}

-- depends_on: {{ ref('int_identity__node_owners') }}
-- depends_on: {{ ref('int_identity__customer_nodes') }}
-- depends_on: {{ ref('int_events') }}
-- depends_on: {{ ref('int_orders') }}
-- depends_on: {{ ref('int_order_items') }}
-- depends_on: {{ ref('stg_consent__records') }}
-- depends_on: {{ ref('stg_email__engagement') }}
-- depends_on: {{ ref('stg_crm__contacts') }}
-- depends_on: {{ ref('stg_shop__customers') }}
-- depends_on: {{ ref('stg_social__leads') }}
-- depends_on: {{ ref('stg_shop__products') }}
with marker as (
    select
        {{ attiva.run_at() }} as _run_at,
        (select max(_ingested_at) from (
            select max(_ingested_at) as _ingested_at from {{ source('raw', 'shop_order_items') }}
            union all select max(_ingested_at) from {{ source('raw', 'consent') }}
            union all select max(_ingested_at) from {{ source('raw', 'email_engagement') }}
            union all select max(_ingested_at) from {{ source('raw', 'crm_contacts') }}
            union all select max(_ingested_at) from {{ source('raw', 'shop_customers') }}
            union all select max(_ingested_at) from {{ source('raw', 'shop_products') }}
        ) as newest) as _ingested_at,
        {{ attiva.as_of() }} as _as_of
),

{% if is_incremental() %}
all_owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
),

unshared_owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }} where not is_shared
),

new_consent_nodes as (
    select 'email:' || email as node from {{ ref('stg_consent__records') }}
    where email is not null and _ingested_at > {{ since_ingested }}
    union
    select 'phone:' || phone from {{ ref('stg_consent__records') }}
    where phone is not null and _ingested_at > {{ since_ingested }}
    union
    select 'shop_customer_id:' || shop_customer_id from {{ ref('stg_consent__records') }}
    where shop_customer_id is not null and _ingested_at > {{ since_ingested }}
),

engagement_nodes as (
    select 'email:' || email as node
    from {{ ref('stg_email__engagement') }}
    where email is not null
      and (_ingested_at > {{ since_ingested }} {% if as_of_moved %}or {{ attiva.crossed('occurred_at', 90, low, high) }}{% endif %})
),

record_nodes as (
    select 'crm_contact_id:' || contact_id as node from {{ ref('stg_crm__contacts') }}
    where _ingested_at > {{ since_ingested }}
    union
    select 'shop_customer_id:' || shop_customer_id from {{ ref('stg_shop__customers') }}
    where _ingested_at > {{ since_ingested }}
    union
    select 'meta_lead_id:' || lead_id from {{ ref('stg_social__leads') }}
    where _ingested_at > {{ since_ingested }}
),

changed_products as (
    select product_id from {{ ref('stg_shop__products') }}
    where _ingested_at > {{ since_ingested }}
),

changed as (
    select customer_id from {{ ref('int_identity__node_owners') }}
    where _run_at > {{ since_run }} and customer_id is not null
    union
    select removed_customer_id from {{ ref('int_identity__node_owners') }}
    where _run_at > {{ since_run }} and removed_customer_id is not null
    union
    select customer_id
    from {{ ref('int_events') }}
    where customer_id is not null
      and (
          _run_at > {{ since_run }}
          {%- if as_of_moved %} or {{ attiva.crossed('occurred_at', 30, low, high) }}{% endif %}
          {%- if previous.products_changed %} or product_id in (select product_id from changed_products){% endif %}
      )
    union
    select customer_id
    from {{ ref('int_orders') }}
    where customer_id is not null
      and (_run_at > {{ since_run }} {%- if as_of_moved %} or {{ attiva.crossed('ordered_at', 0, low, high) }}{% endif %})
    union
    select customer_id
    from {{ ref('int_order_items') }}
    where customer_id is not null
      and (_ingested_at > {{ since_ingested }}
           {%- if previous.products_changed %} or product_id in (select product_id from changed_products){% endif %})
    union
    select a.customer_id from all_owners as a
    where a.node in (select node from new_consent_nodes) or a.node in (select node from engagement_nodes)
    union
    select u.customer_id from unshared_owners as u where u.node in (select node from record_nodes)
),
{% endif %}

final as (
    select cast(null as {{ dbt.type_string() }}) as customer_id, _run_at, _ingested_at, _as_of from marker
    {% if is_incremental() %}
    union all
    select c.customer_id, m._run_at, cast(null as timestamp), cast(null as timestamp)
    from changed as c
    cross join marker as m
    {% endif %}
)

select * from final
