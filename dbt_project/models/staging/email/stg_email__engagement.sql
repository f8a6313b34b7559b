with source as (
    select * from {{ source('raw', 'email_engagement') }}
),

final as (
    select
        trim(engagement_id) as engagement_id,
        {{ attiva.normalize_email('email') }} as email,
        lower(trim(event_type)) as event_type,
        occurred_at,
        campaign,
        message_id,
        lower(trim(bounce_type)) as bounce_type,
        url,
        _ingested_at
    from source
)

select * from final
