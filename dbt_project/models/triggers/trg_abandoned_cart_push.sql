-- Abandoned cart by mobile push: the carts of trg_abandoned_cart whose customer has the app (a device token
-- in customer_push_tokens), sent through the `push` channel (channels.yml, FCM) with push consent
-- (consent_push, checked at send time, as are the tokens FCM has since retired). Its priority is below the
-- cart email's, so under the daily cap of one marketing message a customer the email reaches gets only the
-- email: the push goes to the app users the email cannot reach.
with app_users as (
    select distinct customer_id from {{ ref('customer_push_tokens') }}
)

select
    c.trigger_key,
    c.customer_id,
    c.occurred_at,
    c.exit_reason,
    c.cart_products_json
from {{ ref('trg_abandoned_cart') }} as c
inner join app_users as a on c.customer_id = a.customer_id
