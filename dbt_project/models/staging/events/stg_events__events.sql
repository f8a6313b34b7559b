-- Web and app events, identifiers normalized. Replays of an event id are dropped downstream.
with source as (
    select * from {{ source('raw', 'events') }}
),

final as (
    select
        trim(event_id) as event_id,
        lower(trim(event_type)) as event_type,
        occurred_at,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as shop_customer_id,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        lower(trim(platform)) as platform,
        session_id,
        nullif(trim(product_id), '') as product_id,
        quantity,
        url,
        lower(trim(form_name)) as form_name,
        lower(trim(lead_source)) as lead_source,
        {{ attiva.clean_text('company') }} as company,
        {{ attiva.clean_text('first_name') }} as first_name,
        {{ attiva.clean_text('last_name') }} as last_name,
        _ingested_at
    from source
)

select * from final
