-- The app's push registrations, identifiers normalized. A token rotates: the installation registers a new one
-- and the old one stops working, so only the latest registration of each installation is kept as current
-- (is_latest_registration); an export listing one registration twice keeps one of them.
with source as (
    select * from {{ source('raw', 'app_installations') }}
    where nullif(trim(push_token), '') is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by trim(installation_id)
            order by registered_at desc, _ingested_at desc, _file desc, _line desc
        ) as registration_rank
    from source
),

final as (
    select
        trim(installation_id) as installation_id,
        nullif(trim(shop_customer_id), '') as shop_customer_id,
        {{ attiva.normalize_email('email') }} as email,
        trim(push_token) as push_token,
        lower(trim(platform)) as platform,
        nullif(trim(app_version), '') as app_version,
        registered_at,
        registration_rank = 1 as is_latest_registration,
        _ingested_at
    from ranked
)

select * from final
