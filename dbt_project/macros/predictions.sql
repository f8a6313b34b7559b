{# Audiences read the scores the weekly models publish (schema `predictions`, written by
   activations/predict). On a new warehouse no model has published yet, so the project creates the
   score tables empty at the start of every run (dbt_project.yml on-run-start), with the Python's own
   DDL: the column lists below are copies of clv_warehouse.SCORE_COLUMNS and
   propensity_tables.score_columns(), and tests/predict/test_prediction_sources.py fails when they
   drift apart. #}

{% macro prediction_tables() -%}
    {{ return({
        'customer_clv': 'customer_id string, repeat_purchases bigint, recency_weeks double, tenure_weeks double, avg_repeat_value double, probability_alive double, expected_purchases_90d double, expected_value_365d double, model_version string, as_of timestamp, trained_at timestamp',
        'customer_propensity': 'customer_id string, churn_probability double, purchase_probability_30d double, lead_conversion_probability double, churn_model string, purchase_30d_model string, lead_conversion_model string, scored_at timestamp',
    }) }}
{%- endmacro %}

{% macro ensure_prediction_tables() -%}
    {%- if execute -%}
        {%- do attiva.create_missing_tables('predictions', attiva.prediction_tables()) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
