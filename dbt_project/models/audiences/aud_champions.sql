-- Best customers by RFM: bought recently, often and for a lot.
select
    {{ attiva.audience_contact_columns() }},
    c.orders_count,
    c.revenue,
    c.last_order_at
from {{ ref('customers') }} as c
where c.rfm_segment = 'champion'
