{# Web listening's scores (schema `listening`), written by the Python step between staging and the marts
   (activations/listening/scoring.py). Where it never ran, the project creates the tables empty at the
   start of every run (dbt_project.yml on-run-start), with the step's own DDL: the column lists below are
   copies of activations/listening/scoring.py TABLES, and tests/listening fails when they drift apart. #}

{% macro listening_tables() -%}
    {{ return({
        'mention_scores': 'mention_id string, text_fingerprint string, language string, sentiment_score double, sentiment string, scored_at timestamp',
        'mention_brands': 'mention_id string, brand string, is_own_brand boolean',
        'mention_topics': 'mention_id string, topic string',
    }) }}
{%- endmacro %}

{% macro ensure_listening_tables() -%}
    {%- if execute -%}
        {%- do attiva.create_missing_tables('listening', attiva.listening_tables()) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
