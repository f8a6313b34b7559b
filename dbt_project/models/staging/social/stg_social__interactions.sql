-- Social interactions with the brand's pages (comments, reactions, shares, follows, direct messages,
-- mentions), one row per interaction. A webhook may deliver an interaction twice, and a later delivery
-- with the same id replaces the earlier one: an edited comment, a reaction taken back or an unfollow
-- (verb remove). The latest delivery wins; at the same time, remove beats edited beats add. The
-- interaction keeps the time it first happened. `social_user_id` (platform:from_id) is the person's
-- handle, a node of the identity graph once they share an email or phone (int_identity__observations_social).
with source as (
    select * from {{ source('raw', 'social_interactions') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by platform, trim(interaction_id)
            order by occurred_at desc,
                case lower(trim(coalesce(verb, 'add'))) when 'remove' then 3 when 'edited' then 2 else 1 end desc,
                _ingested_at desc, _file desc, _line desc
        ) as delivery_rank,
        min(occurred_at) over (partition by platform, trim(interaction_id)) as first_occurred_at
    from source
),

final as (
    select
        trim(interaction_id) as interaction_id,
        platform,
        kind,
        coalesce(lower(trim(verb)), 'add') = 'remove' as is_removed,
        first_occurred_at as occurred_at,
        occurred_at as updated_at,
        nullif(trim(page_id), '') as page_id,
        nullif(trim(post_id), '') as post_id,
        nullif(trim(from_id), '') as from_id,
        case when nullif(trim(from_id), '') is not null then platform || ':' || trim(from_id) end as social_user_id,
        {{ attiva.clean_text('from_name') }} as from_name,
        nullif(trim(message), '') as message,
        nullif(lower(trim(reaction_type)), '') as reaction_type,
        {{ attiva.normalize_email('email') }} as email,
        {{ attiva.normalize_phone('phone') }} as phone,
        _ingested_at
    from ranked
    where delivery_rank = 1
)

select * from final
