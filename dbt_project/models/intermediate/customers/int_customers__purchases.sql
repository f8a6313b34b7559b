-- Purchase history per buyer (completed orders up to as_of), RFM scores from 1 to 5 among
-- all buyers, and a rule-based churn risk: how overdue the next order is compared with
-- the buyer's own rhythm.
with orders as (
    select * from {{ ref('orders') }}
    where is_completed and customer_id is not null and ordered_at <= {{ attiva.as_of() }}
),

per_customer as (
    select
        customer_id,
        count(*) as orders_count,
        sum(total_amount) as revenue,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from orders
    group by customer_id
),

measured as (
    select
        *,
        cast(revenue / orders_count as {{ dbt.type_numeric() }}) as avg_order_value,
        {{ dbt.datediff('last_order_at', attiva.as_of(), 'day') }} as days_since_last_order,
        case
            when orders_count > 1
                then {{ dbt.datediff('first_order_at', 'last_order_at', 'day') }} * 1.0 / (orders_count - 1)
        end as avg_days_between_orders
    from per_customer
),

scored as (
    select
        *,
        ntile(5) over (order by days_since_last_order desc, customer_id) as recency_score,
        ntile(5) over (order by orders_count, customer_id) as frequency_score,
        ntile(5) over (order by revenue, customer_id) as monetary_score
    from measured
),

final as (
    select
        *,
        case
            when recency_score >= 4 and frequency_score >= 4 and monetary_score >= 4 then 'champion'
            when recency_score >= 3 and frequency_score >= 3 then 'loyal'
            when recency_score >= 4 and frequency_score <= 2 then 'new'
            when recency_score <= 2 and frequency_score >= 3 then 'at_risk'
            when recency_score <= 2 then 'hibernating'
            else 'needs_attention'
        end as rfm_segment,
        case
            when avg_days_between_orders is not null and avg_days_between_orders > 0 then
                case
                    when days_since_last_order <= 1.5 * avg_days_between_orders then 'low'
                    when days_since_last_order <= 3 * avg_days_between_orders then 'medium'
                    else 'high'
                end
            when days_since_last_order <= 90 then 'low'
            when days_since_last_order <= 180 then 'medium'
            else 'high'
        end as churn_risk
    from scored
)

select * from final
