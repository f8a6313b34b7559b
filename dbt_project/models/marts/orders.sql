-- Orders with the customer who placed them (null when a guest left no usable identifier).
-- A view: int_orders keeps the rows (and re-resolves the customer when identities change).
{{ config(materialized='view') }}

select
    order_id,
    customer_id,
    shop_customer_id,
    email,
    ordered_at,
    status,
    status = 'completed' as is_completed,
    total_amount,
    channel,
    utm_source,
    utm_medium,
    utm_campaign,
    coupon_code
from {{ ref('int_orders') }}
