-- B2B leads worth nurturing: a company, a lead score at or above the threshold, an email,
-- and no purchase yet.
select
    {{ attiva.audience_contact_columns() }},
    c.company,
    c.job_title,
    c.lifecycle_stage,
    c.lead_source,
    c.lead_score
from {{ ref('customers') }} as c
where c.is_b2b
  and c.orders_count = 0
  and c.email is not null
  and c.lead_score >= {{ var('lead_score_nurture_threshold') }}
