-- Consent per customer and channel: the latest record wins, whichever identifier it was
-- given under. An unsubscribe or a spam complaint is a revocation of email consent.
-- At equal times a revocation wins: when in doubt, no consent. A lead-ad form's ticked marketing
-- checkbox (stg_social__leads.consent_marketing) grants email consent when the form was submitted; an
-- unticked one revokes nothing.
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

nodes as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where 1 = 1 {{ attiva.only_affected() }}
),

records as (
    select consent_id, email, phone, shop_customer_id, channel, status, recorded_at
    from {{ ref('stg_consent__records') }}
    union all
    select engagement_id, email, cast(null as {{ dbt.type_string() }}), cast(null as {{ dbt.type_string() }}),
           'email', 'revoked', occurred_at
    from {{ ref('stg_email__engagement') }}
    where event_type in ('unsubscribe', 'complaint')
    union all
    select 'meta_lead:' || lead_id, email, cast(null as {{ dbt.type_string() }}), cast(null as {{ dbt.type_string() }}),
           'email', 'granted', created_at
    from {{ ref('stg_social__leads') }}
    where consent_marketing and email is not null
),

by_identifier as (
    select consent_id, 'email:' || email as node, channel, status, recorded_at from records where email is not null
    union all
    select consent_id, 'phone:' || phone, channel, status, recorded_at from records where phone is not null
    union all
    select consent_id, 'shop_customer_id:' || shop_customer_id, channel, status, recorded_at
    from records where shop_customer_id is not null
),

per_customer as (
    select distinct n.customer_id, b.consent_id, b.channel, b.status, b.recorded_at
    from by_identifier as b
    inner join nodes as n on b.node = n.node
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id, channel
            order by recorded_at desc, case when status = 'revoked' then 0 else 1 end, consent_id
        ) as recency_rank
    from per_customer
),

computed as (
    select customer_id, channel, status, recorded_at
    from ranked
    where recency_rank = 1
),

final as (
    {{ attiva.per_customer_rows('computed', ['channel', 'status', 'recorded_at']) }}
)

select * from final
