-- Lead-ad form submissions from Facebook and Instagram (Meta Lead Ads), identifiers normalized, one row
-- per lead: the leadgen webhook may land a lead twice (a crash between landing it and clearing it from the
-- pending list), and the latest landing wins. A form asking one name field gives first and last name from
-- it. lead_source is what the lead funnel groups by: facebook_lead_ads or instagram_lead_ads.
with source as (
    select * from {{ source('raw', 'social_leads') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by trim(lead_id)
            order by received_at desc, _ingested_at desc, _file desc, _line desc
        ) as landing_rank
    from source
),

named as (
    select
        *,
        {{ attiva.clean_text('full_name') }} as clean_full_name
    from ranked
    where landing_rank = 1
),

final as (
    select
        trim(lead_id) as lead_id,
        created_at,
        nullif(trim(page_id), '') as page_id,
        nullif(trim(form_id), '') as form_id,
        nullif(trim(ad_id), '') as ad_id,
        nullif(trim(adgroup_id), '') as adgroup_id,
        lower(trim(platform)) as platform,
        case when lower(trim(platform)) = 'ig' then 'instagram_lead_ads' else 'facebook_lead_ads' end as lead_source,
        is_organic,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        {{ attiva.email_set_aside('email') }} as email_set_aside,
        {{ attiva.phone_set_aside('phone') }} as phone_set_aside,
        coalesce(
            {{ attiva.clean_text('first_name') }},
            nullif({{ dbt.split_part('clean_full_name', "' '", 1) }}, '')
        ) as first_name,
        coalesce(
            {{ attiva.clean_text('last_name') }},
            nullif(trim(substr(clean_full_name, length({{ dbt.split_part('clean_full_name', "' '", 1) }}) + 1)), '')
        ) as last_name,
        {{ attiva.clean_text('city') }} as city,
        consent_marketing,
        received_at,
        _ingested_at
    from named
)

select * from final
