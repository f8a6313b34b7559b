-- Predicted churners worth keeping: the churn model gives them at least `predicted_churn_at_least`,
-- and their predicted value over the next 365 days is in the top `predicted_value_top_share` of the
-- buyers the lifetime-value model scored. Empty until both weekly models have published.
with valued as (
    select
        customer_id,
        expected_value_365d,
        probability_alive,
        percent_rank() over (order by expected_value_365d) as value_rank
    from {{ source('predictions', 'customer_clv') }}
    where expected_value_365d is not null
)

select
    {{ attiva.audience_contact_columns() }},
    p.churn_probability,
    v.expected_value_365d,
    v.probability_alive
from {{ ref('customers') }} as c
inner join {{ source('predictions', 'customer_propensity') }} as p on p.customer_id = c.customer_id
inner join valued as v on v.customer_id = c.customer_id
where p.churn_probability >= {{ var('predicted_churn_at_least') }}
  and v.value_rank >= 1 - {{ var('predicted_value_top_share') }}
