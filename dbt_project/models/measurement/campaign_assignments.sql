-- Who each campaign was meant for, and who it held out: the two groups campaign_uplift compares.
-- One row per ledger row (occurrence and step) once its time came. The holdout is drawn when an
-- occurrence is planned (a hash of campaign and customer) and never goes through the send-time
-- checks (exit, consent, suppression list, frequency caps); so the fair comparison is between
-- everyone assigned to each group: the treated group counts steps that were sent, and also those
-- suppressed or failed at send time ("intention to treat"). Counting only the sent ones would
-- compare customers who passed those checks (still consenting, cart not yet bought) with a holdout
-- nobody checked.
--
-- exposed_at is when the step went out, or would have: its due time, or the pass that planned it
-- when it was already due then (the holdout of a step due two days ago, first seen today, would
-- have been sent today). A step whose time has not come by the last messaging pass (still planned,
-- or held out and due later) is in neither group yet.

with ledger as (
    select * from {{ source('activation', 'message_ledger') }}
),

last_pass as (
    -- Every pass stamps what it plans (planned_at) and decides (updated_at).
    select max(coalesce(updated_at, planned_at)) as passed_at from ledger
),

final as (
    select
        l.campaign,
        l.trigger_key,
        l.step,
        l.template as variant,
        l.customer_id,
        l.message_id,
        l.state,
        l.state = 'held_out' as is_holdout,
        l.state = 'sent' as was_sent,
        case when l.planned_at > l.due_at then l.planned_at else l.due_at end as exposed_at
    from ledger as l
    cross join last_pass as p
    where
        l.customer_id is not null
        and l.state in ('sent', 'suppressed', 'failed', 'held_out')
        and l.due_at <= p.passed_at
)

select * from final
