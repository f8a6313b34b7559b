-- Seed list for ads lookalikes: the top `high_ltv_top_share` of buyers by revenue.
with ranked as (
    select c.*, percent_rank() over (order by c.revenue desc, c.customer_id) as revenue_rank
    from {{ ref('customers') }} as c
    where c.orders_count > 0
)

select
    {{ attiva.audience_contact_columns('ranked') }},
    ranked.revenue,
    ranked.orders_count
from ranked
where ranked.revenue_rank < {{ var('high_ltv_top_share') }}
