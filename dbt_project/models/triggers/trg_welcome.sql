-- Welcome series: people whose first ever email consent was given in the last
-- `welcome_window_days` (a re-subscription is not a new subscriber). Consent records are
-- given under an email, a phone or a shop account: each reaches the customer(s) holding
-- that identifier, as in the customer 360. The series stops once email consent is gone
-- (the latest record, an unsubscribe or a complaint revoked it): exit 'unsubscribed'.
with grants as (
    select email, phone, shop_customer_id, recorded_at, consent_source
    from {{ ref('stg_consent__records') }}
    where channel = 'email' and status = 'granted' and recorded_at <= {{ attiva.as_of() }}
),

grants_by_identifier as (
    select 'email' as identifier_type, email as identifier_value, recorded_at, consent_source
    from grants where email is not null
    union all
    select 'phone', phone, recorded_at, consent_source from grants where phone is not null
    union all
    select 'shop_customer_id', shop_customer_id, recorded_at, consent_source
    from grants where shop_customer_id is not null
),

customer_grants as (
    select distinct i.customer_id, g.recorded_at, g.consent_source
    from grants_by_identifier as g
    inner join {{ ref('customer_identifiers') }} as i
        on g.identifier_type = i.identifier_type and g.identifier_value = i.identifier_value
),

first_grants as (
    select
        customer_id,
        recorded_at as subscribed_at,
        consent_source as subscribed_via,
        row_number() over (partition by customer_id order by recorded_at, consent_source) as grant_rank
    from customer_grants
),

final as (
    select
        c.customer_id as trigger_key,
        c.customer_id,
        f.subscribed_at as occurred_at,
        case when not c.consent_email then 'unsubscribed' end as exit_reason,
        f.subscribed_via
    from first_grants as f
    inner join {{ ref('customers') }} as c on f.customer_id = c.customer_id
    where f.grant_rank = 1
      and f.subscribed_at > {{ dbt.dateadd('day', -var('welcome_window_days'), attiva.as_of()) }}
)

select * from final
