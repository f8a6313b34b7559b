-- Win-back: a buyer with no completed order for `win_back_after_days`. One occurrence per
-- lapse, keyed by the last order's date, from the day the lapse begins; a new order ends
-- it (the row disappears) and a later lapse is a new occurrence. Lapses older than
-- `win_back_window_days` are left to the at-risk audience.
{#- Windows compare the nullable timestamp with bounds computed from as_of: Spark's dateadd
    refuses a null input. #}
{%- set lapsed_at = dbt.dateadd('day', var('win_back_after_days'), 'c.last_order_at') %}
with final as (
    select
        c.customer_id || ':' || cast(cast(c.last_order_at as date) as {{ dbt.type_string() }}) as trigger_key,
        c.customer_id,
        {{ lapsed_at }} as occurred_at,
        c.last_order_at,
        c.days_since_last_order,
        c.orders_count
    from {{ ref('customers') }} as c
    where c.orders_count > 0
      and c.last_order_at is not null
      and c.last_order_at <= {{ dbt.dateadd('day', -var('win_back_after_days'), attiva.as_of()) }}
      and c.last_order_at > {{ dbt.dateadd('day', -(var('win_back_after_days') + var('win_back_window_days')), attiva.as_of()) }}
)

select * from final
