-- The path customers took through each campaign's steps, from the message ledger: per campaign, step and
-- channel, how many occurrences reached the step (held out ones apart), how many were sent, skipped by a
-- branch (and for what: an open, a click, an order, a STOP reply, an audience, or a `when` that timed out),
-- suppressed (consent, caps, suppression lists, expiry) or are still waiting. A skipped step's reason may
-- name several behaviours: it counts under each. campaign_performance has what the sent ones earned.
with ledger as (
    select campaign, step, channel, state, reason
    from {{ source('activation', 'message_ledger') }}
),

final as (
    select
        campaign,
        step,
        channel,
        sum(case when state <> 'held_out' then 1 else 0 end) as reached,
        sum(case when state = 'sent' then 1 else 0 end) as sent,
        sum(case when state = 'skipped' then 1 else 0 end) as skipped,
        sum(case when state = 'suppressed' then 1 else 0 end) as suppressed,
        sum(case when state in ('planned', 'sending') then 1 else 0 end) as waiting,
        sum(case when state = 'failed' then 1 else 0 end) as failed,
        sum(case when state = 'held_out' then 1 else 0 end) as held_out,
        {%- for behaviour in ['opened', 'clicked', 'bought', 'stopped'] %}
        sum(case when state = 'skipped' and reason like 'branch not taken: %{{ behaviour }}%'
                      and reason not like '%waited for%' then 1 else 0 end) as skipped_{{ behaviour }},
        {%- endfor %}
        sum(case when state = 'skipped' and reason like 'branch not taken: %in_audience:%'
                      and reason not like '%waited for%' then 1 else 0 end) as skipped_in_audience,
        sum(case when state = 'skipped' and reason like '%waited for%timed out%' then 1 else 0 end)
            as skipped_timed_out
    from ledger
    group by campaign, step, channel
)

select
    *,
    cast(sent as double) / nullif(reached, 0) as share_sent
from final
