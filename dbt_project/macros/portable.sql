{# SQL that differs between engines, behind adapter.dispatch. Models call only these
   and dbt's cross-database macros, so the same project builds on DuckDB and Spark. #}

{% macro as_of() -%}
    {%- if var('as_of', '') -%}
        cast('{{ var("as_of") }}' as timestamp)
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as timestamp)
    {%- endif -%}
{%- endmacro %}

{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'attiva')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regex_matches(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}
{% macro spark__regex_matches(expr, pattern) -%}
    ({{ expr }} rlike '{{ pattern }}')
{%- endmacro %}

{% macro regex_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace_all', 'attiva')(expr, pattern, replacement)) }}
{%- endmacro %}
{% macro default__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}
{% macro spark__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{# Wall-clock time in a customer's IANA timezone, from a UTC timestamp. #}
{% macro to_local_time(utc_ts, tz) -%}
    {{ return(adapter.dispatch('to_local_time', 'attiva')(utc_ts, tz)) }}
{%- endmacro %}
{% macro default__to_local_time(utc_ts, tz) -%}
    cast(timezone({{ tz }}, cast({{ utc_ts }} as timestamp) at time zone 'UTC') as timestamp)
{%- endmacro %}
{% macro spark__to_local_time(utc_ts, tz) -%}
    from_utc_timestamp({{ utc_ts }}, {{ tz }})
{%- endmacro %}
