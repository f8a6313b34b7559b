with source as (
    select * from {{ source('raw', 'consent') }}
),

final as (
    select
        trim(consent_id) as consent_id,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        nullif(trim(shop_customer_id), '') as shop_customer_id,
        lower(trim(channel)) as channel,
        lower(trim(status)) as status,
        recorded_at,
        lower(trim(source)) as consent_source,
        _ingested_at
    from source
    where lower(trim(channel)) in ('email', 'sms', 'push', 'ads', 'profiling')
      and lower(trim(status)) in ('granted', 'revoked')
)

select * from final
