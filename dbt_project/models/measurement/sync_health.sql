-- Per sync and run: how big the audience was, what the run planned and sent, what the
-- destination confirmed or rejected and what was set aside as invalid, as rates a person can
-- compare across runs; then what the destination itself reported, where it reports anything:
-- rows it received and found invalid (Meta custom audiences: num_received, num_invalid_entries)
-- and the share of uploaded people it matched to its users, as the range it gives (Google
-- Customer Match through the Data Manager API: uploadMatchRateRange, weighted over the run's
-- requests). match_rate is the middle of that range. The other destinations report neither.

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
        reported_received,
        reported_invalid,
        cast(reported_invalid as double) / nullif(reported_received, 0) as reported_invalid_rate,
        match_rate_low,
        match_rate_high,
        (match_rate_low + match_rate_high) / 2 as match_rate,
        error
    from runs
)

select * from final
