-- Order lines with the order's customer and date (lines whose order has not arrived yet
-- are left out). A view: int_order_items keeps the rows incrementally.
{{ config(materialized='view') }}

select
    order_item_id,
    order_id,
    customer_id,
    ordered_at,
    is_completed,
    product_id,
    quantity,
    unit_price,
    line_amount
from {{ ref('int_order_items') }}
where has_order
