-- Birthday by SMS: the occurrences of trg_birthday (the customer's birthday today, in their own
-- timezone), sent through the `sms` channel (channels.yml, Twilio) to the customer's phone, only with
-- SMS consent (consent_sms, checked at send time). Its priority is below the birthday email's, so under
-- the daily cap of one marketing message a customer the email reaches gets only the email: the SMS goes
-- to those the email cannot reach (no email consent, no address, unsubscribed).
select
    trigger_key,
    customer_id,
    occurred_at,
    first_name
from {{ ref('trg_birthday') }}
