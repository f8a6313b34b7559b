{# Layers get plain schema names (staging, marts, audiences ...), not target_prefixed ones:
   other systems (the activation engine, BI tools) read them by name. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
