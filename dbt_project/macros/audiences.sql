{# The columns every audience carries, so any destination can reach the person and the
   engine can check consent per channel at send time. #}
{% macro audience_contact_columns(alias='c') -%}
    {{ alias }}.customer_id,
    {{ alias }}.email,
    {{ alias }}.phone,
    {{ alias }}.first_name,
    {{ alias }}.last_name,
    {{ alias }}.country,
    {{ alias }}.timezone,
    {{ alias }}.consent_email,
    {{ alias }}.consent_sms,
    {{ alias }}.consent_ads,
    {{ alias }}.email_marketable
{%- endmacro %}
