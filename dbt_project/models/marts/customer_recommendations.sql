-- For each customer, the products worth suggesting that they have not bought yet:
-- first what goes with what they bought (product_affinity), then the bestsellers of
-- their favourite category. Only active products. A view: int_customers__recommendations
-- keeps the rows incrementally.
{{ config(materialized='view') }}

select customer_id, recommendation_rank, product_id, score, reason
from {{ ref('int_customers__recommendations') }}
