-- Every identifier of every customer, normalized, with where and when it was seen.
-- The lookup table for everything that starts from an identifier: consent records,
-- email engagement, events, the personalization API and the destinations.
-- A view: int_identity__identifiers keeps the rows incrementally.
{{ config(materialized='view') }}

select customer_id, identifier_type, identifier_value, source, first_seen_at, last_seen_at, is_shared
from {{ ref('int_identity__identifiers') }}
