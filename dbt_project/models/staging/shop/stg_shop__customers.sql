-- Every version of every shop account, identifiers normalized. Identity resolution uses all
-- versions (an old email still identifies the person); profiles use the latest.
-- Versions are grouped by the id as the models read it, trimmed (ids load as written: ' 42' is 42).
with source as (
    select * from {{ source('raw', 'shop_customers') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by trim(shop_customer_id) order by updated_at desc, _ingested_at desc, _file desc, _line desc
        ) as version_rank
    from source
),

final as (
    select
        trim(shop_customer_id) as shop_customer_id,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        {{ attiva.email_set_aside('email') }} as email_set_aside,
        {{ attiva.phone_set_aside('phone') }} as phone_set_aside,
        {{ attiva.clean_text('first_name') }} as first_name,
        {{ attiva.clean_text('last_name') }} as last_name,
        birth_date,
        upper(trim(country)) as country,
        {{ attiva.clean_text('address') }} as address,
        {{ attiva.clean_text('city') }} as city,
        trim(postal_code) as postal_code,
        created_at,
        updated_at,
        version_rank = 1 as is_latest_version,
        _ingested_at
    from latest
)

select * from final
