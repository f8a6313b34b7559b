-- One row per mention (deduplicated in staging), with what the listening step found: its language,
-- sentiment, whether it names the brand or a competitor (listening.yml). A mention the step has not
-- scored yet (or in neither Italian nor English) has no sentiment.
with mentions as (
    select * from {{ ref('stg_listening__mentions') }}
),

scores as (
    select * from {{ source('listening', 'mention_scores') }}
),

brands as (
    select
        mention_id,
        max(case when is_own_brand then 1 else 0 end) as names_brand,
        max(case when is_own_brand then 0 else 1 end) as names_competitor
    from {{ source('listening', 'mention_brands') }}
    group by mention_id
),

final as (
    select
        m.mention_id,
        m.published_at,
        cast({{ dbt.date_trunc('week', 'm.published_at') }} as date) as week_start,
        m.source_kind,
        m.source_name,
        m.url,
        m.title,
        m.author,
        s.language,
        s.sentiment_score,
        s.sentiment,
        coalesce(b.names_brand, 0) = 1 as names_brand,
        coalesce(b.names_competitor, 0) = 1 as names_competitor,
        m.copies
    from mentions as m
    left join scores as s
        on s.mention_id = m.mention_id and s.text_fingerprint = m.text_fingerprint
    left join brands as b on b.mention_id = m.mention_id
)

select * from final
