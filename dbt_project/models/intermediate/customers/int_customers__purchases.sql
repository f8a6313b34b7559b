-- Purchase history per buyer: completed orders up to as_of, and the buyer's own rhythm.
-- What depends on the whole population or on as_of itself (RFM scores, days since the
-- last order, churn risk) is computed by the customers mart on top of this.
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

orders as (
    select * from {{ ref('orders') }}
    where is_completed and customer_id is not null and ordered_at <= {{ attiva.as_of() }}
    {{- attiva.only_affected() }}
),

computed as (
    select
        customer_id,
        count(*) as orders_count,
        sum(total_amount) as revenue,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        case
            when count(*) > 1
                then cast({{ dbt.datediff('min(ordered_at)', 'max(ordered_at)', 'day') }} as double) / (count(*) - 1)
        end as avg_days_between_orders
    from orders
    group by customer_id
),

final as (
    {{ attiva.per_customer_rows('computed', ['orders_count', 'revenue', 'first_order_at', 'last_order_at',
                                             'avg_days_between_orders']) }}
)

select * from final
