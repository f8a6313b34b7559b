-- Social engagement per week (weeks start on Monday, UTC), platform and kind: how many interactions, from
-- how many people (distinct handles; an interaction whose author the platform hid counts as one more), how
-- many of them known customers, and how many interactions came from known customers.
with engagement as (
    select * from {{ ref('social_engagement') }}
),

final as (
    select
        week_start,
        platform,
        kind,
        count(*) as interactions,
        count(distinct social_user_id)
            + count(case when social_user_id is null then 1 end) as people,
        count(distinct customer_id) as customers,
        count(customer_id) as interactions_by_customers
    from engagement
    group by week_start, platform, kind
)

select * from final
