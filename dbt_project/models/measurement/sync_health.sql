-- Per sync and run: how big the audience was, what the run planned and sent, what the
-- destination confirmed or rejected and what was set aside as invalid, as rates a person can
-- compare across runs. match_rate is where a destination reports how many uploaded people it
-- matched to its users; none of the current destinations reports one when it answers an
-- upload (ad platforms show it in their own interface hours later), so it stays empty until
-- one does.

with runs as (
    select * from {{ source('activation', 'sync_runs') }}
),

final as (
    select
        run_id,
        sync_name,
        destination,
        mode,
        status,
        started_at,
        finished_at,
        duration_seconds,
        audience_rows,
        planned,
        sent,
        confirmed,
        rejected,
        invalid,
        cast(confirmed as double) / nullif(sent, 0) as confirmed_rate,
        cast(rejected as double) / nullif(sent, 0) as rejected_rate,
        cast(invalid as double) / nullif(planned, 0) as invalid_rate,
        cast(null as double) as match_rate,
        error
    from runs
)

select * from final
