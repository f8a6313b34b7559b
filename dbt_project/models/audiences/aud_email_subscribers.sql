-- Everyone we may email: an address, email consent (latest record wins, unsubscribes and
-- complaints revoke it) and no hard bounce.
select
    {{ attiva.audience_contact_columns() }},
    c.lifecycle_stage
from {{ ref('customers') }} as c
where c.email_marketable
