-- Every version of every CRM contact, identifiers normalized. Identity resolution uses all
-- versions (an old phone still identifies the person); profiles use the latest.
-- Versions are grouped by the id as the models read it, trimmed (ids load as written: ' 42' is 42).
with source as (
    select * from {{ source('raw', 'crm_contacts') }}
),

latest as (
    select
        *,
        row_number() over (partition by trim(contact_id) order by updated_at desc, _ingested_at desc, _file desc, _line desc) as version_rank
    from source
),

final as (
    select
        trim(contact_id) as contact_id,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        {{ attiva.email_set_aside('email') }} as email_set_aside,
        {{ attiva.phone_set_aside('phone') }} as phone_set_aside,
        {{ attiva.clean_text('first_name') }} as first_name,
        {{ attiva.clean_text('last_name') }} as last_name,
        {{ attiva.clean_text('company') }} as company,
        {{ attiva.clean_text('job_title') }} as job_title,
        upper(trim(country)) as country,
        {{ attiva.clean_text('address') }} as address,
        {{ attiva.clean_text('city') }} as city,
        birth_date,
        lower(trim(lifecycle_stage)) as lifecycle_stage,
        lower(trim(lead_source)) as lead_source,
        became_lead_at,
        became_mql_at,
        became_sql_at,
        became_customer_at,
        created_at,
        updated_at,
        version_rank = 1 as is_latest_version,
        _ingested_at
    from latest
)

select * from final
