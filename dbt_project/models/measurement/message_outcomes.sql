-- One row per message sent and per message held out (the holdout's "would have been sent"), with
-- what the email service provider reported about it. Engagement events are matched to a message
-- by its id (the Message-ID / X-Attiva-Message-Id the ESP echoes back), else by address and
-- campaign: the latest message of that campaign sent, before the event, to the customer who has
-- that address (any of their addresses: the one a message went to may since have changed).
-- In-app messages (channel type in_app) are measured from the storefront's events instead, by message id
-- only: message_displayed counts as an open (the message was seen), message_clicked as a click,
-- message_dismissed as `dismissed`.
-- A view, so it always reflects the ledger as the last messaging pass left it.

with ledger as (
    select
        campaign,
        trigger_key,
        step,
        template,
        -- the channel it was sent by: a campaign's fallback's for a customer its channel could not reach
        channel,
        customer_id,
        state,
        message_id,
        occurred_at,
        sent_at,
        -- The holdout never gets a send time: it is exposed when the message would have been sent,
        -- at its due time or, when it was already due when first planned, by that pass.
        coalesce(sent_at, case when planned_at > due_at then planned_at else due_at end) as exposed_at,
        coupon_code,
        -- what set the due time: as_soon_as_due, best_hour or segment_hour (null: planned before it was recorded)
        timed_by
    from {{ source('activation', 'message_ledger') }}
    where state in ('sent', 'held_out')
),

addresses as (
    select distinct customer_id, identifier_value as email
    from {{ ref('customer_identifiers') }}
    where identifier_type = 'email'
),

messages as (
    select * from ledger
),

engagement as (
    select
        engagement_id,
        email,
        event_type,
        occurred_at,
        campaign,
        -- ESPs quote the Message-ID header with or without its angle brackets.
        replace(replace(trim(message_id), '<', ''), '>', '') as message_id,
        bounce_type
    from {{ ref('stg_email__engagement') }}
),

-- Only events that can match a message: its id, or a campaign the ledger has sent. The ESP's
-- history of other mailings (newsletters, millions of rows) is never ranked nor joined.
-- (Semi-joins rather than `in (subquery) or in (subquery)`: Spark 4 with adaptive execution
-- fails to run that disjunction when the ledger is a union, as in a unit test's fixture.)
sent_message_ids as (select distinct message_id from ledger where state = 'sent'),

sent_campaigns as (select distinct campaign from ledger where state = 'sent'),

events_ranked as (
    select
        e.*,
        row_number() over (partition by e.engagement_id order by e.occurred_at) as copy_number
    from engagement as e
    left join sent_message_ids as i on e.message_id = i.message_id
    left join sent_campaigns as c on e.campaign = c.campaign
    where i.message_id is not null or c.campaign is not null
),

events as (
    select * from events_ranked where copy_number = 1
),

by_message_id as (
    select m.message_id as matched_message_id, e.*
    from events as e
    join messages as m on m.message_id = e.message_id and m.state = 'sent'
),

unmatched as (
    select e.*
    from events as e
    left join by_message_id as b on b.engagement_id = e.engagement_id
    where b.engagement_id is null
),

by_address_candidates as (
    select
        m.message_id as matched_message_id,
        u.*,
        row_number() over (partition by u.engagement_id order by m.sent_at desc, m.step desc) as nearest
    from unmatched as u
    join addresses as a on a.email = u.email
    join messages as m
        on m.customer_id = a.customer_id and m.state = 'sent' and m.campaign = u.campaign
        and m.sent_at <= u.occurred_at
),

-- The storefront's feedback on in-app messages, each event once (a replayed event id counts once).
in_app_events as (
    select
        e.message_id as matched_message_id,
        case e.event_type
            when 'message_displayed' then 'open'
            when 'message_clicked' then 'click'
            else 'dismiss'
        end as event_type,
        cast(null as {{ dbt.type_string() }}) as bounce_type,
        e.occurred_at,
        row_number() over (partition by e.event_id order by e.occurred_at) as copy_number
    from {{ ref('stg_events__events') }} as e
    inner join sent_message_ids as i on e.message_id = i.message_id
    where e.event_type in ('message_displayed', 'message_clicked', 'message_dismissed')
),

matched as (
    select matched_message_id, event_type, bounce_type, occurred_at from by_message_id
    union all
    select matched_message_id, event_type, bounce_type, occurred_at from by_address_candidates where nearest = 1
    union all
    select matched_message_id, event_type, bounce_type, occurred_at from in_app_events where copy_number = 1
),

per_message as (
    select
        matched_message_id,
        max(case when event_type = 'delivered' then 1 else 0 end) as delivered_events,
        max(case when event_type = 'open' then 1 else 0 end) as open_events,
        max(case when event_type = 'click' then 1 else 0 end) as click_events,
        max(case when event_type = 'bounce' then 1 else 0 end) as bounce_events,
        max(case when event_type = 'bounce' and bounce_type = 'hard' then 1 else 0 end) as hard_bounce_events,
        max(case when event_type = 'unsubscribe' then 1 else 0 end) as unsubscribe_events,
        max(case when event_type = 'complaint' then 1 else 0 end) as complaint_events,
        max(case when event_type = 'dismiss' then 1 else 0 end) as dismiss_events,
        min(case when event_type = 'open' then occurred_at end) as first_opened_at,
        min(case when event_type = 'click' then occurred_at end) as first_clicked_at
    from matched
    group by matched_message_id
),

final as (
    select
        m.message_id,
        m.campaign,
        m.step,
        m.template as variant,
        m.channel,
        m.trigger_key,
        m.customer_id,
        m.state = 'held_out' as is_holdout,
        m.occurred_at,
        m.sent_at,
        m.exposed_at,
        m.coupon_code,
        m.timed_by,
        -- An open or a click proves delivery even when the ESP sent no "delivered" event.
        coalesce(p.delivered_events + p.open_events + p.click_events, 0) > 0
            and coalesce(p.bounce_events, 0) = 0 as delivered,
        coalesce(p.open_events + p.click_events, 0) > 0 as opened,
        coalesce(p.click_events, 0) > 0 as clicked,
        coalesce(p.bounce_events, 0) > 0 as bounced,
        coalesce(p.hard_bounce_events, 0) > 0 as hard_bounced,
        coalesce(p.unsubscribe_events, 0) > 0 as unsubscribed,
        coalesce(p.complaint_events, 0) > 0 as complained,
        coalesce(p.dismiss_events, 0) > 0 as dismissed,
        p.first_opened_at,
        p.first_clicked_at
    from messages as m
    left join per_message as p on p.matched_message_id = m.message_id
)

select * from final
