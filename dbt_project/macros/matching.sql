{# Probabilistic matching writes its links (schema `matching`) between staging and the identity
   models (activations/identity/matching.py). Where it never ran, the project creates the tables
   empty at the start of every run (dbt_project.yml on-run-start), with the step's own DDL: the
   column lists below are copies of activations/identity/links.py TABLES, and
   tests/identity/test_matching_tables.py fails when they drift apart. #}

{% macro matching_tables() -%}
    {{ return({
        'links': 'pair_id string, record_id_l string, record_id_r string, match_weight double, match_probability double, evidence string, status string, scored_at timestamp, decided_at timestamp, updated_at timestamp',
        'records': 'record_id string, fingerprint string, scored_at timestamp',
        'runs': 'run_id string, started_at timestamp, finished_at timestamp, records bigint, new_records bigint, pairs_scored bigint, links_written bigint, seconds double',
        'models': 'trained_at timestamp, records bigint, model string',
    }) }}
{%- endmacro %}

{% macro ensure_matching_tables() -%}
    {%- if execute -%}
        {%- do attiva.create_missing_tables('matching', attiva.matching_tables()) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
