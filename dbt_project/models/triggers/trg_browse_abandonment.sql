-- Browse abandonment: the same product viewed at least `browse_abandon_min_views` times
-- within `browse_abandon_window_days`, by a known customer. Views of a product form an
-- episode until a pause longer than the window; an episode is an occurrence from the view
-- that reaches the threshold, keyed by customer, product and the episode's first day, so
-- further views never make a second one. It exits once the product is carted ('carted')
-- or bought ('ordered') after the episode began: the cart journey takes over.
{%- set window_days = var('browse_abandon_window_days') %}
{%- set since = dbt.dateadd('day', -var('browse_abandon_lookback_days'), attiva.as_of()) %}
with product_views as (
    select customer_id, product_id, occurred_at
    from {{ ref('events') }}
    where event_type = 'product_view'
      and customer_id is not null
      and product_id is not null
      and occurred_at <= {{ attiva.as_of() }}
),

-- Every view of the pairs viewed lately, so an episode's start never depends on the window.
recent_pairs as (
    select distinct customer_id, product_id from product_views where occurred_at > {{ since }}
),

-- window_start: the earliest view time that still counts with this one (computed from the
-- view's own time: Spark's dateadd refuses the nulls lag gives).
pair_views as (
    select
        v.customer_id,
        v.product_id,
        v.occurred_at,
        {{ dbt.dateadd('day', -window_days, 'v.occurred_at') }} as window_start,
        lag(v.occurred_at) over (
            partition by v.customer_id, v.product_id order by v.occurred_at
        ) as previous_view_at,
        lag(v.occurred_at, {{ var('browse_abandon_min_views') - 1 }}) over (
            partition by v.customer_id, v.product_id order by v.occurred_at
        ) as earlier_view_at
    from product_views as v
    inner join recent_pairs as r on v.customer_id = r.customer_id and v.product_id = r.product_id
),

numbered as (
    select
        *,
        sum(case
            when previous_view_at is null or previous_view_at < window_start then 1
            else 0
        end) over (
            partition by customer_id, product_id order by occurred_at rows between unbounded preceding and current row
        ) as episode
    from pair_views
),

episodes as (
    select
        customer_id,
        product_id,
        episode,
        min(occurred_at) as first_view_at,
        -- The view that brings the count within the window to the threshold.
        min(case
            when earlier_view_at >= window_start then occurred_at
        end) as threshold_at,
        count(*) as view_count
    from numbered
    group by customer_id, product_id, episode
),

occurrences as (
    select *
    from episodes
    where threshold_at is not null and threshold_at > {{ since }}
),

carted as (
    select e.customer_id, e.product_id, o.first_view_at, min(e.occurred_at) as carted_at
    from {{ ref('events') }} as e
    inner join occurrences as o on e.customer_id = o.customer_id and e.product_id = o.product_id
    where e.event_type in ('add_to_cart', 'checkout_started')
      and e.occurred_at >= o.first_view_at
      and e.occurred_at <= {{ attiva.as_of() }}
    group by e.customer_id, e.product_id, o.first_view_at
),

bought as (
    select i.customer_id, i.product_id, o.first_view_at, min(i.ordered_at) as ordered_at
    from {{ ref('order_items') }} as i
    inner join occurrences as o on i.customer_id = o.customer_id and i.product_id = o.product_id
    where i.ordered_at >= o.first_view_at
      and i.ordered_at <= {{ attiva.as_of() }}
    group by i.customer_id, i.product_id, o.first_view_at
),

final as (
    select
        o.customer_id || ':' || o.product_id || ':' || cast(cast(o.first_view_at as date) as {{ dbt.type_string() }})
            as trigger_key,
        o.customer_id,
        o.threshold_at as occurred_at,
        case
            when od.customer_id is not null then 'ordered'
            when ca.customer_id is not null then 'carted'
        end as exit_reason,
        o.product_id,
        p.product_name as viewed_product_name,
        cast(p.current_price as double) as current_price,
        o.first_view_at,
        cast(o.view_count as bigint) as view_count
    from occurrences as o
    inner join {{ ref('products') }} as p on o.product_id = p.product_id
    left join carted as ca
        on o.customer_id = ca.customer_id and o.product_id = ca.product_id and o.first_view_at = ca.first_view_at
    left join bought as od
        on o.customer_id = od.customer_id and o.product_id = od.product_id and o.first_view_at = od.first_view_at
)

select * from final
