-- The lead-ad forms each customer submitted on Facebook and Instagram: how many, the first, and the lead
-- source of the first (facebook_lead_ads, instagram_lead_ads). A lead joins its customer by email or phone
-- (int_identity__observations_social); one with neither belongs to nobody and is not here.
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where not is_shared {{ attiva.only_affected() }}
),

leads as (
    select o.customer_id, l.lead_id, l.created_at, l.lead_source
    from {{ ref('stg_social__leads') }} as l
    inner join owners as o on o.node = 'meta_lead_id:' || l.lead_id
),

computed as (
    select
        customer_id,
        count(*) as social_leads,
        min(created_at) as first_social_lead_at,
        min_by(lead_source, created_at) as social_lead_source
    from leads
    group by customer_id
),

final as (
    {{ attiva.per_customer_rows('computed', ['social_leads', 'first_social_lead_at', 'social_lead_source']) }}
)

select * from final
