{# Tables Python steps write and models read (activation, matching, predictions): created empty when
   missing at the start of every run (dbt_project.yml on-run-start), so the project builds on a new
   warehouse. `create ... if not exists` never touches a table that is already there. #}
{% macro create_missing_tables(schema, tables) -%}
    {%- do run_query('create schema if not exists ' ~ schema) -%}
    {%- for name, columns in tables.items() -%}
        {%- do run_query('create table if not exists ' ~ schema ~ '.' ~ name ~ ' (' ~ columns ~ ')') -%}
    {%- endfor -%}
{%- endmacro %}
