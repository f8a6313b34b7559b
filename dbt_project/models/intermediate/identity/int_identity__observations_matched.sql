-- What probabilistic matching says belong together (activations/identity/matching.py): each
-- merged or accepted link observes the right record's node from the left one's. A link that
-- stops linking (a reviewer rejected it, a changed record scored it lower) turns into the left
-- record observing itself, under the same key: the upsert replaces the linking row, and the
-- graph recomputes the component both records were in at this build, which splits them again.
-- Links that never linked (in review, rejected before any merge) have no row.
-- Kept incrementally: a run reads only the links updated since the last one, and stamps
-- what it wrote (`_run_at`), which is how int_identity__components finds what changed.
{{ config(materialized=attiva.incremental_materialization(), unique_key='observation_key', incremental_strategy=attiva.upsert_strategy(),
          on_schema_change='append_new_columns') }}

with links as (
    select * from {{ source('matching', 'links') }}
    {{ attiva.ingested_since_last_run('updated_at') }}
),

final as (
    select
        {{ dbt.hash("record_id_l || '|' || record_id_r || '|probable_match'") }} as observation_key,
        record_id_l as anchor_node,
        case when status in ('merged', 'accepted') then record_id_r else record_id_l end as identifier_node,
        cast(null as {{ dbt.type_string() }}) as name_key,
        'probable_match' as source,
        -- the link's last change of status, not its last scoring: a rescored link keeps its row as it was,
        -- so an incremental build and a full rebuild read the same time
        updated_at as first_seen_at,
        updated_at as last_seen_at,
        updated_at as _ingested_at,
        updated_at,
        {{ attiva.run_at() }} as _run_at
    from links
    where status in ('merged', 'accepted')
    {% if is_incremental() %}
       or {{ dbt.hash("record_id_l || '|' || record_id_r || '|probable_match'") }} in (select observation_key from {{ this }})
    {% endif %}
)

select * from final
