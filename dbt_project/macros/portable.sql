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
{# Spark reads a backslash in a string literal as an escape: double it to reach the regex. #}
{% macro spark__regex_matches(expr, pattern) -%}
    ({{ expr }} rlike '{{ pattern | replace('\\', '\\\\') }}')
{%- endmacro %}

{% macro regex_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace_all', 'attiva')(expr, pattern, replacement)) }}
{%- endmacro %}
{% macro default__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}
{% macro spark__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern | replace('\\', '\\\\') }}', '{{ replacement }}')
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

{# dbt's own date macros on Spark, made to agree with DuckDB (the project's spark__ versions take
   precedence over dbt-spark's):
   - dateadd: dbt-spark goes through whole unix seconds, dropping fractions of a second;
     Spark's timestampadd (3.3+) keeps them, and passes nulls through.
   - datediff in hours, minutes or seconds: dbt-spark rounds the elapsed time up to whole units,
     where DuckDB (like Snowflake) counts the unit boundaries crossed: 10:10 to 11:50 is one hour
     on DuckDB, two on dbt-spark. Boundaries crossed = the difference of the truncated times. #}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart in ('hour', 'minute', 'second') -%}
        timestampdiff({{ datepart }}, date_trunc('{{ datepart }}', {{ first_date }}),
                      date_trunc('{{ datepart }}', {{ second_date }}))
    {%- else -%}
        {{ dbt.spark__datediff(first_date, second_date, datepart) }}
    {%- endif -%}
{%- endmacro %}
