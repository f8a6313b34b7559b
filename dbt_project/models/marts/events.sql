-- Web and app events with the customer behind them, resolved at build time so a device
-- identified today also claims its earlier anonymous events. A view: int_events keeps
-- the rows (and re-resolves the customer when identities change).
{{ config(materialized='view') }}

select
    event_id,
    customer_id,
    event_type,
    occurred_at,
    anonymous_id,
    shop_customer_id,
    platform,
    session_id,
    product_id,
    quantity,
    url,
    form_name,
    lead_source
from {{ ref('int_events') }}
