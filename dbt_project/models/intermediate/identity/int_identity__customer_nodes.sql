-- Which customer each identifier belongs to (see int_identity__node_owners, which keeps it);
-- shared identifiers belong to several.
{{ config(materialized='view') }}

select node, customer_id, is_shared
from {{ ref('int_identity__node_owners') }}
where customer_id is not null
