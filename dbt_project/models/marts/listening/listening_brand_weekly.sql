-- Brand awareness per week (weeks start on Monday, UTC) and topic: how many mentions name each brand of
-- listening.yml (the brand and its competitors), its share of voice (its mentions over the mentions of
-- every brand that week and topic; a mention naming two brands counts for both) and how they feel
-- (average sentiment, shares positive and negative of the mentions with a sentiment). topic 'all' holds
-- every mention; a mention in several topics counts in each. A brand with no mention in a week has no row.
with mentions as (
    select * from {{ ref('listening_mentions') }}
),

brands as (
    select distinct mention_id, brand, is_own_brand from {{ source('listening', 'mention_brands') }}
),

topics as (
    select distinct mention_id, topic from {{ source('listening', 'mention_topics') }}
    union all
    select mention_id, 'all' as topic from mentions
),

tagged as (
    select
        m.week_start,
        t.topic,
        b.brand,
        b.is_own_brand,
        m.sentiment_score,
        m.sentiment
    from mentions as m
    inner join brands as b on b.mention_id = m.mention_id
    inner join topics as t on t.mention_id = m.mention_id
),

weekly as (
    select
        week_start,
        topic,
        brand,
        max(case when is_own_brand then 1 else 0 end) = 1 as is_own_brand,
        count(*) as mentions,
        count(sentiment) as mentions_with_sentiment,
        avg(sentiment_score) as avg_sentiment,
        sum(case when sentiment = 'positive' then 1 else 0 end) as positive_mentions,
        sum(case when sentiment = 'negative' then 1 else 0 end) as negative_mentions
    from tagged
    group by week_start, topic, brand
),

final as (
    select
        week_start,
        topic,
        brand,
        is_own_brand,
        mentions,
        cast(mentions as double) / sum(mentions) over (partition by week_start, topic) as share_of_voice,
        mentions_with_sentiment,
        avg_sentiment,
        cast(positive_mentions as double) / nullif(mentions_with_sentiment, 0) as share_positive,
        cast(negative_mentions as double) / nullif(mentions_with_sentiment, 0) as share_negative
    from weekly
)

select * from final
