-- Web and app events, identifiers normalized. Replays of an event id are dropped downstream.
--
-- Trust (docs/security.md): an event sent with a public browser key and no signed identity
-- token (trust = 'browser') is evidence about its anonymous device only. Its user id, email
-- and phone are dropped here, so downstream it never ties identifiers together (no identity
-- edge) and is attributed to a customer only through a device a trusted event linked: a
-- trigger fires for a customer only on events trusted for them. Rows without `trust` come
-- from the business's own systems and are trusted.
with source as (
    select *, coalesce(lower(trim(trust)), 'server') <> 'browser' as is_trusted
    from {{ source('raw', 'events') }}
),

final as (
    select
        trim(event_id) as event_id,
        lower(trim(event_type)) as event_type,
        occurred_at,
        nullif(trim(anonymous_id), '') as anonymous_id,
        case when is_trusted then nullif(trim(user_id), '') end as shop_customer_id,
        case when is_trusted then {{ attiva.normalize_email('email') }} end as email,
        case when is_trusted then {{ attiva.normalize_phone('phone') }} end as phone,
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
        -- in-app feedback (message_displayed / _clicked / _dismissed): which message; not an identifier
        nullif(trim(message_id), '') as message_id,
        is_trusted,
        _ingested_at
    from source
)

select * from final
