{# Measurement reads tables the activation engine writes (schema `activation`). On a new
   warehouse they do not exist until the first sync or messaging pass, so the project creates
   them empty at the start of every run (dbt_project.yml on-run-start), with the engine's own
   DDL: the column lists below are copies of activations/messaging/ledger.py TABLES and
   activations/engine/state.py TABLES, and tests/measurement/test_activation_ddl.py fails when
   they drift apart. `create ... if not exists` never touches a table that is already there;
   columns the engine added later (state.py and ledger.py ADDED_COLUMNS) are added to an older table. #}

{% macro activation_tables() -%}
    {{ return({
        'message_ledger': 'campaign string, trigger_key string, step integer, customer_id string, channel string, template string, state string, reason string, priority integer, marketing boolean, occurred_at timestamp, due_at timestamp, expires_at timestamp, message_id string, provider_id string, coupon_code string, attempts integer, planned_at timestamp, sending_at timestamp, sent_at timestamp, updated_at timestamp, variant_probability double, timed_by string',
        'suppression_list': 'email_sha256 string, reason string, added_at timestamp',
        'sync_runs': 'run_id string, sync_name string, destination string, mode string, plan_id string, status string, started_at timestamp, finished_at timestamp, duration_seconds double, audience_rows bigint, planned bigint, sent bigint, confirmed bigint, rejected bigint, invalid bigint, error string, reported_received bigint, reported_invalid bigint, match_rate_low double, match_rate_high double, resent bigint, paused_seconds double',
    }) }}
{%- endmacro %}

{% macro activation_added_columns() -%}
    {{ return({
        'message_ledger': 'variant_probability double, timed_by string',
        'sync_runs': 'reported_received bigint, reported_invalid bigint, match_rate_low double, match_rate_high double, resent bigint, paused_seconds double',
    }) }}
{%- endmacro %}

{% macro ensure_activation_tables() -%}
    {%- if execute -%}
        {%- do attiva.create_missing_tables('activation', attiva.activation_tables()) -%}
        {%- for name, columns in attiva.activation_added_columns().items() -%}
            {%- for column in columns.split(',') -%}
                {%- set sql = attiva.add_column_if_missing('activation.' ~ name, column.strip()) -%}
                {%- if sql | trim -%}{%- do run_query(sql) -%}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{# `alter table ... add column if not exists`; Spark has no `if not exists` there, so it looks first. #}
{% macro add_column_if_missing(table, column) -%}
    {{ return(adapter.dispatch('add_column_if_missing', 'attiva')(table, column)) }}
{%- endmacro %}
{% macro default__add_column_if_missing(table, column) -%}
    alter table {{ table }} add column if not exists {{ column }}
{%- endmacro %}
{% macro spark__add_column_if_missing(table, column) -%}
    {%- set existing = run_query('describe ' ~ table).columns[0].values() | map('lower') | list -%}
    {%- if column.split()[0] | lower not in existing -%}
        alter table {{ table }} add columns ({{ column }})
    {%- endif -%}
{%- endmacro %}

{# The median of a numeric expression, as an aggregate. #}
{% macro median(expr) -%}
    {{ return(adapter.dispatch('median', 'attiva')(expr)) }}
{%- endmacro %}
{% macro default__median(expr) -%}
    percentile_cont(0.5) within group (order by {{ expr }})
{%- endmacro %}
{% macro duckdb__median(expr) -%}
    median({{ expr }})
{%- endmacro %}
{% macro spark__median(expr) -%}
    percentile({{ expr }}, 0.5)
{%- endmacro %}
{% macro bigquery__median(expr) -%}
    approx_quantiles({{ expr }}, 2)[offset(1)]
{%- endmacro %}

{# The 97.5 % quantile of Student's t with `df` degrees of freedom (a 95 % two-sided interval),
   by the Cornish-Fisher expansion around the normal quantile z = 1.959964: within 0.03 of the
   exact value at df = 3, 0.003 from df = 5, 1e-6 from df = 30; plain arithmetic, so it runs on
   any engine. #}
{% macro t_quantile_975(df) -%}
    (1.959964
     + (power(1.959964, 3) + 1.959964) / (4 * ({{ df }}))
     + (5 * power(1.959964, 5) + 16 * power(1.959964, 3) + 3 * 1.959964) / (96 * power({{ df }}, 2))
     + (3 * power(1.959964, 7) + 19 * power(1.959964, 5) + 17 * power(1.959964, 3) - 15 * 1.959964)
       / (384 * power({{ df }}, 3)))
{%- endmacro %}

{# One bound of the 95 % Wilson score interval of a proportion p of n (sign '-' for the low bound,
   '+' for the high one): the proportions a score test at p would not reject. Unlike p -/+ z se it
   stays within [0, 1] and has width at p = 0 or 1, where the normal approximation collapses to a
   point. Pass n through nullif(n, 0): no one, no interval. Doubles throughout (power() returns one):
   Spark would otherwise keep decimal arithmetic on the literals. #}
{% macro wilson_bound(p, n, sign) -%}
    (({{ p }}) + power(1.959964, 2) / (2 * cast({{ n }} as double))
     {{ sign }} 1.959964 * sqrt(({{ p }}) * (1 - ({{ p }})) / cast({{ n }} as double)
                                 + power(1.959964, 2) / (4 * power(cast({{ n }} as double), 2))))
    / (1 + power(1.959964, 2) / cast({{ n }} as double))
{%- endmacro %}

{# A statistic rounded to 6 decimals: what a report shows, and stable enough for unit tests to
   compare with a hand computation. #}
{% macro round_stat(expr) -%}
    {{ return(adapter.dispatch('round_stat', 'attiva')(expr)) }}
{%- endmacro %}
{% macro default__round_stat(expr) -%}
    round(cast({{ expr }} as double), 6)
{%- endmacro %}
{% macro postgres__round_stat(expr) -%}
    cast(round(cast({{ expr }} as numeric), 6) as double precision)
{%- endmacro %}
