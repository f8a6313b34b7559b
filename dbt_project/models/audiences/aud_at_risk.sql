-- Win-back: buyers with no order for at least `win_back_after_days` (but bought in the
-- last two years, so they still remember us).
select
    {{ attiva.audience_contact_columns() }},
    c.orders_count,
    c.revenue,
    c.last_order_at,
    c.days_since_last_order,
    c.churn_risk
from {{ ref('customers') }} as c
where c.orders_count > 0
  and c.days_since_last_order >= {{ var('win_back_after_days') }}
  and c.days_since_last_order <= 730
