-- Products bought together: for each product, the products that appear in the same
-- completed orders more often than chance (lift > 1), best first. A view:
-- int_product_affinity keeps the rows.
{{ config(materialized='view') }}

select product_id, related_product_id, affinity_rank, co_orders, support, confidence, lift
from {{ ref('int_product_affinity') }}
