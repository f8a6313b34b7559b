{#- The completed orders of known customers placed after `since` and up to the run's as-of time: the
    purchases a conversions model (models/conversions) sends back to an ad platform, each platform with
    its own window. -#}
{% macro completed_orders_since(since) %}
    select
        order_id,
        customer_id,
        shop_customer_id,
        ordered_at,
        total_amount,
        channel
    from {{ ref('orders') }}
    where is_completed
      and customer_id is not null
      and ordered_at <= {{ attiva.as_of() }}
      and ordered_at > {{ since }}
{% endmacro %}
