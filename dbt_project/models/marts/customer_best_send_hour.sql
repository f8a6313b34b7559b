-- Each customer's best hour of day for a message, in their own timezone (marts.customers.timezone):
-- the local hour in which they opened or clicked most over the last send_time_lookback_days, once
-- that hour holds at least send_time_min_engagements of them; else the hour their segment
-- (rfm_segment, else lifecycle_stage) engages most, pooled over its members in their own local
-- times, once it holds send_time_min_segment_engagements; else none. The messaging engine reads
-- it for campaigns declaring `send_time: best_hour` (docs/messaging.md#send-time-optimization).
-- Ties go to the earlier hour, so both engines pick the same one.

with customers as (
    select
        customer_id,
        timezone,
        coalesce(rfm_segment, lifecycle_stage) as segment
    from {{ ref('customers') }}
),

addresses as (
    select distinct customer_id, identifier_value as email
    from {{ ref('customer_identifiers') }}
    where identifier_type = 'email'
),

-- Every engagement of the ESP's history counts (newsletters too), not only Attiva's messages.
engagement as (
    select distinct a.customer_id, e.engagement_id, e.occurred_at
    from {{ ref('stg_email__engagement') }} as e
    inner join addresses as a on a.email = e.email
    where e.event_type in ('open', 'click')
      and e.occurred_at <= {{ attiva.as_of() }}
      and e.occurred_at > {{ dbt.dateadd('day', -var('send_time_lookback_days'), attiva.as_of()) }}
),

local_hours as (
    select
        g.customer_id,
        c.segment,
        cast(extract(hour from {{ attiva.to_local_time('g.occurred_at', 'c.timezone') }}) as integer) as local_hour
    from engagement as g
    inner join customers as c on c.customer_id = g.customer_id
),

customer_hour_counts as (
    select customer_id, local_hour, count(*) as engagements
    from local_hours
    group by customer_id, local_hour
),

customer_hours as (
    select
        *,
        row_number() over (partition by customer_id order by engagements desc, local_hour) as hour_rank
    from customer_hour_counts
),

customer_totals as (
    select customer_id, sum(engagements) as engagements
    from customer_hours
    group by customer_id
),

segment_hour_counts as (
    select segment, local_hour, count(*) as engagements
    from local_hours
    where segment is not null
    group by segment, local_hour
),

segment_hours as (
    select
        *,
        row_number() over (partition by segment order by engagements desc, local_hour) as hour_rank
    from segment_hour_counts
),

own_best as (
    select customer_id, local_hour
    from customer_hours
    where hour_rank = 1 and engagements >= {{ var('send_time_min_engagements') }}
),

segment_best as (
    select segment, local_hour
    from segment_hours
    where hour_rank = 1 and engagements >= {{ var('send_time_min_segment_engagements') }}
),

final as (
    select
        c.customer_id,
        c.timezone,
        c.segment,
        cast(coalesce(t.engagements, 0) as bigint) as engagements,
        coalesce(o.local_hour, s.local_hour) as best_hour,
        case
            when o.local_hour is not null then 'own_history'
            when s.local_hour is not null then 'segment'
        end as hour_from
    from customers as c
    left join customer_totals as t on t.customer_id = c.customer_id
    left join own_best as o on o.customer_id = c.customer_id
    left join segment_best as s on s.segment = c.segment
)

select * from final
