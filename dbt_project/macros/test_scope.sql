{# Data tests on incremental models check what the last run wrote: a test's `where` may say
   `_run_at = __last_run__`, read as the newest `_run_at` of the tested model. A full build
   writes every row in one run, so the daily full refresh checks everything; in between,
   delete+insert replaces every key a run writes, so a duplicate or a dangling reference can
   only come from the rows that run wrote. (Overrides dbt's macro of the same name.) #}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__last_run__', '(select max(_run_at) from ' ~ relation ~ ')') -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
