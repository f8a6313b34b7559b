-- "Your favourite is on offer" as an on-site banner: the occurrences of trg_favourite_on_promotion, sent
-- through the `on_site` channel (channels.yml, type in_app): written into the inbox `attiva serve` reads,
-- shown to the customer on their next visit (GET /v1/messages/me). Its priority is below the email's, so
-- under the daily cap of one marketing message (shared by every channel) a customer the email reaches that
-- day gets only the email; the banner goes to those the email cannot reach.
select
    f.trigger_key,
    f.customer_id,
    f.occurred_at,
    f.exit_reason,
    f.product_id,
    f.product_name,
    f.discount_pct,
    f.current_price
from {{ ref('trg_favourite_on_promotion') }} as f
