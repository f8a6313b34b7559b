{# The largest `column` of `relation` (this model by default) as a timestamp literal, read
   when the model runs: a constant filter lets the engine skip what it does not need (and
   prune by min/max), where a subquery would make it scan everything. #}
{% macro max_timestamp(column, relation=none) -%}
    {%- set value = none -%}
    {%- if execute and is_incremental() -%}
        {%- set value = run_query('select max(' ~ column ~ ') from ' ~ (relation or this)).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if value is none -%}
        cast('1900-01-01' as timestamp)
    {%- else -%}
        cast('{{ value }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{# New rows only: everything ingested after the newest row already in this model. #}
{% macro ingested_since_last_run(column='_ingested_at') -%}
    {%- if is_incremental() -%}
        where {{ column }} > {{ attiva.max_timestamp(column) }}
    {%- endif -%}
{%- endmacro %}

{# How a model that keeps its rows incrementally is materialized. `incremental` needs an engine
   that can delete and replace rows in place (DuckDB; on Spark a Delta or Iceberg table). Plain
   Parquet tables on Spark can do neither, so there the model is a `table` rebuilt whole on every
   run: is_incremental() is false, every model takes its full-build branch, and the rows come
   out the same; only the saving of incremental work is lost. dbt_project.yml, which cannot call
   a macro, spells this out again for the per-customer models (intermediate: customers:), and
   upsert_strategy below likewise: change both together. #}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'attiva')()) }}
{%- endmacro %}
{% macro default__incremental_materialization() -%}incremental{%- endmacro %}
{% macro spark__incremental_materialization() -%}table{%- endmacro %}

{# How an incremental model replaces rows that share a key: merge where the engine has it. #}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy', 'attiva')()) }}
{%- endmacro %}
{% macro default__upsert_strategy() -%}delete+insert{%- endmacro %}
{% macro spark__upsert_strategy() -%}merge{%- endmacro %}

{# Identity observations of one source, kept incrementally: `records` (a CTE with
   anchor_node, name_key, source, first_seen_at, last_seen_at, email, phone, device_id,
   _ingested_at) holds only the rows ingested since the last run; each (anchor, identifier,
   name, source) they show is merged with what the model already holds, widening its
   first/last sighting. min and max merge exactly, so the result equals a full rebuild. #}
{% macro merge_observations(records) -%}
unpivoted as (
    select anchor_node, anchor_node as identifier_node, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }}
    union all
    select anchor_node, 'email:' || email, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }} where email is not null
    union all
    select anchor_node, 'phone:' || phone, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }} where phone is not null
    union all
    select anchor_node, 'device_id:' || device_id, name_key, source, first_seen_at, last_seen_at, _ingested_at
    from {{ records }} where device_id is not null
),

grouped as (
    select
        {{ dbt.hash("anchor_node || '|' || identifier_node || '|' || coalesce(name_key, '') || '|' || source") }}
            as observation_key,
        anchor_node,
        identifier_node,
        name_key,
        source,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        max(_ingested_at) as _ingested_at
    from unpivoted
    group by anchor_node, identifier_node, name_key, source
),

merged as (
    {%- if is_incremental() %}
    select
        g.observation_key,
        g.anchor_node,
        g.identifier_node,
        g.name_key,
        g.source,
        case when t.first_seen_at is null or g.first_seen_at < t.first_seen_at then g.first_seen_at
             else t.first_seen_at end as first_seen_at,
        case when t.last_seen_at is null or g.last_seen_at > t.last_seen_at then g.last_seen_at
             else t.last_seen_at end as last_seen_at,
        g._ingested_at
    from grouped as g
    left join {{ this }} as t on g.observation_key = t.observation_key
    {%- else %}
    select * from grouped
    {%- endif %}
)
{%- endmacro %}

{# When this dbt invocation started: every row an incremental model writes in a run is
   stamped with it (`_run_at`), so a downstream model can find what changed since its own
   last successful run, even when a run in between failed before reaching it. #}
{% macro run_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{# The newest `_run_at` this model holds: its last successful run that wrote rows. #}
{% macro last_run_at(relation=none) -%}
    {{ attiva.max_timestamp('_run_at', relation) }}
{%- endmacro %}

{# Rows of `relation` (re)written by a run after this model's last one. #}
{% macro written_since_last_run(relation) -%}
    select * from {{ relation }} where _run_at > {{ attiva.last_run_at() }}
{%- endmacro %}

{# Customers whose inputs changed since this model's last run (int_customers__affected):
   a per-customer model recomputes only these. #}
{% macro affected_customers() -%}
    select distinct customer_id from {{ ref('int_customers__affected') }}
    where customer_id is not null and _run_at > {{ attiva.last_run_at() }}
{%- endmacro %}

{# A per-customer model writes one row (at least) for every affected customer: the ones
   that no longer have data get a placeholder whose `_run_at` is null, so delete+insert
   still removes their old rows; this post-hook then drops the placeholders. #}
{% macro drop_placeholders() -%}
    {#- A full build (and a model rebuilt as a table) writes no placeholders. -#}
    {%- if model.config.materialized == 'incremental' -%}
    delete from {{ this }} where _run_at is null
    {%- endif -%}
{%- endmacro %}

{# The rows a per-customer model writes: in an incremental run one per affected customer
   at least (`computed` left-joined to `affected_customers`, placeholders for the customers
   with nothing left), in a full build all of `computed`. `computed` has customer_id and
   `columns`. #}
{% macro per_customer_rows(computed, columns) -%}
    {%- if is_incremental() %}
    select
        a.customer_id,
        {%- for column in columns %}
        x.{{ column }},
        {%- endfor %}
        case when x.customer_id is not null then {{ attiva.run_at() }} end as _run_at
    from affected_customers as a
    left join {{ computed }} as x on a.customer_id = x.customer_id
    {%- else %}
    select
        x.customer_id,
        {%- for column in columns %}
        x.{{ column }},
        {%- endfor %}
        {{ attiva.run_at() }} as _run_at
    from {{ computed }} as x
    {%- endif %}
{%- endmacro %}

{# `and customer_id in (affected customers)` in an incremental run, nothing in a full one. #}
{% macro only_affected(column='customer_id') -%}
    {%- if is_incremental() %} and {{ column }} in (select customer_id from affected_customers){% endif -%}
{%- endmacro %}

{# Whether the whole-catalogue statistics a model keeps (`_inputs_ingested_at`, `_as_of`
   columns) may have changed since its last run: orders, order lines or products ingested
   since, or a different as_of (co-purchases and bestsellers count orders up to as_of). #}
{% macro order_inputs_changed() -%}
    {%- if not execute or not is_incremental() -%}{{ return(false) }}{%- endif -%}
    {%- set sql -%}
        with previous as (
            -- every row holds the same as_of: a change of as_of rewrites them all
            select max(_inputs_ingested_at) as ingested_at, max(_as_of) as as_of
            from {{ this }}
        )
        select
            (select count(*) from previous where as_of is null or as_of <> {{ attiva.as_of() }})
            + (select count(*) from {{ ref('int_orders') }} where _ingested_at > (select ingested_at from previous))
            + (select count(*) from {{ ref('int_order_items') }} where _ingested_at > (select ingested_at from previous))
            + (select count(*) from {{ ref('stg_shop__products') }} where _ingested_at > (select ingested_at from previous))
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values()[0] > 0) }}
{%- endmacro %}

{# A timestamp that changed side when as_of moved between `low` and `high`: of as_of
   itself, or of the start of a `window_days` window ending at as_of. #}
{% macro crossed(column, window_days, low, high) -%}
    ({{ column }} > {{ low }} and {{ column }} <= {{ high }})
    {%- if window_days %}
    or ({{ column }} >= {{ dbt.dateadd('day', -window_days, low) }}
        and {{ column }} < {{ dbt.dateadd('day', -window_days, high) }})
    {%- endif %}
{%- endmacro %}

{# The `_inputs_ingested_at` a model keeping whole-catalogue statistics stores. #}
{% macro order_inputs_ingested_at() -%}
    (select max(_ingested_at) from (
        select max(_ingested_at) as _ingested_at from {{ ref('int_orders') }}
        union all select max(_ingested_at) from {{ ref('int_order_items') }}
        union all select max(_ingested_at) from {{ ref('stg_shop__products') }}
    ) as newest)
{%- endmacro %}
