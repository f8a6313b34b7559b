-- Brand and product mentions (raw.web_mentions), each counted once. A mention lands more than once:
-- `attiva listen` fetching a feed that still lists yesterday's items (same mention_id: the latest landing
-- wins), an aggregator republishing an article (same url: the earliest wins), a site reposting the same
-- text under a new id and url within a day (same source, same UTC day, same text once lower-cased with
-- everything but letters and digits dropped: the earliest wins). copies says how many landed rows it stands for.
-- text_fingerprint keys the sentiment the listening step stores (listening.mention_scores): a mention is
-- scored again only when its text changes.
with source as (
    select * from {{ source('raw', 'web_mentions') }}
),

latest_landing as (
    select
        *,
        row_number() over (
            partition by trim(mention_id)
            order by _ingested_at desc, _file desc, _line desc
        ) as landing_rank,
        count(*) over (partition by trim(mention_id)) as id_copies
    from source
),

normalized as (
    select
        trim(mention_id) as mention_id,
        nullif(trim(url), '') as url,
        lower(trim(source_kind)) as source_kind,
        nullif(trim(source_name), '') as source_name,
        nullif(trim(title), '') as title,
        trim(text) as text,
        nullif(trim(author), '') as author,
        published_at,
        nullif(lower(trim(language)), '') as feed_language,
        trim({{ attiva.regex_replace_all('lower(text)', '[^a-z0-9]+', ' ') }}) as normalized_text,
        id_copies,
        _ingested_at
    from latest_landing
    where landing_rank = 1
),

by_url as (
    select
        *,
        row_number() over (
            partition by coalesce(url, 'mention:' || mention_id) order by published_at, mention_id
        ) as url_rank,
        sum(id_copies) over (partition by coalesce(url, 'mention:' || mention_id)) as url_copies
    from normalized
),

by_text as (
    select
        *,
        row_number() over (
            partition by coalesce(lower(source_name), ''), cast(published_at as date), normalized_text
            order by published_at, mention_id
        ) as text_rank,
        sum(url_copies) over (
            partition by coalesce(lower(source_name), ''), cast(published_at as date), normalized_text
        ) as text_copies
    from by_url
    where url_rank = 1
),

final as (
    select
        mention_id,
        url,
        source_kind,
        source_name,
        title,
        text,
        author,
        published_at,
        feed_language,
        md5(normalized_text) as text_fingerprint,
        cast(text_copies as bigint) as copies,
        _ingested_at
    from by_text
    where text_rank = 1
)

select * from final
