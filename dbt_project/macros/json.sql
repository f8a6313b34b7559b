{# Nested payloads for triggered messages. A trigger column named `<x>_json` holds a JSON
   string; the messaging engine hands it to templates parsed, as `<x>`.

   json_array_of_objects: an aggregate; one JSON array per group, one object per row,
   `fields` a list of (key, SQL expression) pairs, keys in that order. Elements are
   sorted by their first field, then the next ones, so the same rows always give the
   same string (the engines give no order otherwise). #}

{% macro json_array_of_objects(fields) -%}
    {{ return(adapter.dispatch('json_array_of_objects', 'attiva')(fields)) }}
{%- endmacro %}

{% macro default__json_array_of_objects(fields) -%}
    to_json(list(
        struct_pack({% for key, expr in fields %}"{{ key }}" := {{ expr }}{{ ", " if not loop.last }}{% endfor %})
        order by {% for key, expr in fields %}{{ expr }}{{ ", " if not loop.last }}{% endfor %}
    ))
{%- endmacro %}

{% macro spark__json_array_of_objects(fields) -%}
    {#- array_sort orders structs field by field, in declaration order. -#}
    to_json(array_sort(collect_list(
        named_struct({% for key, expr in fields %}'{{ key }}', {{ expr }}{{ ", " if not loop.last }}{% endfor %})
    )))
{%- endmacro %}
