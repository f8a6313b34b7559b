{# New rows only: everything ingested after the newest row already in this model. #}
{% macro ingested_since_last_run(column='_ingested_at') -%}
    {%- if is_incremental() -%}
        where {{ column }} > (select coalesce(max({{ column }}), cast('1900-01-01' as timestamp)) from {{ this }})
    {%- endif -%}
{%- endmacro %}

{# How an incremental model replaces rows that share a key: merge where the engine has it. #}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy', 'attiva')()) }}
{%- endmacro %}
{% macro default__upsert_strategy() -%}delete+insert{%- endmacro %}
{% macro spark__upsert_strategy() -%}merge{%- endmacro %}
