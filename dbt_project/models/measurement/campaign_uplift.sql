-- Did the campaign change what customers did, compared with doing nothing? Per campaign, the
-- customers assigned to receive it (treated, whether or not send-time checks then stopped a
-- message: see campaign_assignments) against those held out: the share who placed a completed
-- order, and the revenue per customer, from their first (would-be) message until
-- attribution_window_days after their last. Every order in that window counts, whatever
-- message_conversions attributed it to, so the two groups are measured the same way.
--
-- Intervals are 95 %. Conversion: Newcombe's hybrid score interval for the difference of two
-- proportions (Newcombe 1998, method 10), built from each group's Wilson score interval: it keeps
-- its level where a group has few conversions, as a small holdout has. The normal approximation
-- (Wald) it replaced was too narrow there: it held the planted uplift in 92.7 % of 2,000 simulated
-- campaigns of 1,000 customers with 10 % held out, this one in 95.9 % (docs/benchmarks.md).
-- Revenue per customer: Welch's t (Welch-Satterthwaite degrees of freedom). too_small_to_say
-- when either group has fewer than uplift_min_group_size customers or both together fewer than
-- uplift_min_conversions conversions: Welch's t leans on the normal approximation, which does not
-- hold there.
--
-- A customer is measured once their window has closed (attribution_window_days after their last
-- exposure, by as_of): counting one messaged yesterday would add a customer who had no time to buy
-- in either group and pull the uplift towards zero. customers_waiting counts those not measured yet.

{% set window_days = var('attribution_window_days', 7) %}
{% set min_group = var('uplift_min_group_size', 30) %}
{% set min_conversions = var('uplift_min_conversions', 10) %}

with exposures as (
    select
        campaign,
        customer_id,
        max(case when is_holdout then 1 else 0 end) as is_holdout,
        max(case when was_sent then 1 else 0 end) as was_sent,
        min(exposed_at) as first_exposed_at,
        max(exposed_at) as last_exposed_at
    from {{ ref('campaign_assignments') }}
    group by campaign, customer_id
),

windows as (
    select
        *,
        case when {{ dbt.dateadd('day', window_days, 'last_exposed_at') }} <= {{ attiva.as_of() }} then 1 else 0 end
            as window_closed
    from exposures
),

orders as (
    select customer_id, ordered_at, cast(total_amount as double) as total_amount
    from {{ ref('orders') }}
    where is_completed and customer_id is not null
        and customer_id in (select customer_id from exposures)
),

per_customer as (
    select
        e.campaign,
        e.customer_id,
        e.is_holdout,
        e.was_sent,
        e.window_closed,
        case when count(o.ordered_at) > 0 then 1 else 0 end as converted,
        coalesce(sum(o.total_amount), 0) as revenue
    from windows as e
    left join orders as o
        on o.customer_id = e.customer_id
        and o.ordered_at >= e.first_exposed_at
        and o.ordered_at < {{ dbt.dateadd('day', window_days, 'e.last_exposed_at') }}
    group by e.campaign, e.customer_id, e.is_holdout, e.was_sent, e.window_closed
),

measured as (
    -- Only customers whose window has closed count; the others are only counted as waiting.
    select
        campaign,
        customer_id,
        is_holdout * window_closed as is_holdout,
        (1 - is_holdout) * window_closed as is_treated,
        was_sent * window_closed as was_sent,
        converted * window_closed as converted,
        revenue * window_closed as revenue,
        1 - window_closed as is_waiting
    from per_customer
),

groups as (
    select
        campaign,
        sum(is_treated) as n_t,
        sum(is_holdout) as n_h,
        sum(is_waiting) as waiting,
        sum(is_treated * was_sent) as sent_t,
        sum(is_treated * converted) as x_t,
        sum(is_holdout * converted) as x_h,
        sum(is_treated * revenue) as rev_t,
        sum(is_holdout * revenue) as rev_h,
        sum(is_treated * revenue * revenue) as sq_t,
        sum(is_holdout * revenue * revenue) as sq_h
    from measured
    group by campaign
),

rates as (
    select
        campaign,
        n_t,
        n_h,
        waiting,
        sent_t,
        x_t,
        x_h,
        rev_t,
        rev_h,
        cast(x_t as double) / nullif(n_t, 0) as p_t,
        cast(x_h as double) / nullif(n_h, 0) as p_h,
        cast(rev_t as double) / nullif(n_t, 0) as mean_t,
        cast(rev_h as double) / nullif(n_h, 0) as mean_h,
        -- Sample variances of revenue per customer (n - 1 in the denominator).
        (sq_t - cast(rev_t as double) * rev_t / nullif(n_t, 0)) / nullif(n_t - 1, 0) as var_t,
        (sq_h - cast(rev_h as double) * rev_h / nullif(n_h, 0)) / nullif(n_h - 1, 0) as var_h
    from groups
),

errors as (
    select
        *,
        p_t - p_h as conversion_uplift,
        {{ attiva.wilson_bound('p_t', 'nullif(n_t, 0)', '-') }} as wilson_low_t,
        {{ attiva.wilson_bound('p_t', 'nullif(n_t, 0)', '+') }} as wilson_high_t,
        {{ attiva.wilson_bound('p_h', 'nullif(n_h, 0)', '-') }} as wilson_low_h,
        {{ attiva.wilson_bound('p_h', 'nullif(n_h, 0)', '+') }} as wilson_high_h,
        mean_t - mean_h as revenue_uplift,
        -- Rounding can leave a variance of zero a hair below it.
        case when var_t < 0 then 0 else var_t end / nullif(n_t, 0)
            + case when var_h < 0 then 0 else var_h end / nullif(n_h, 0) as revenue_se2,
        case when var_t < 0 then 0 else var_t end / nullif(n_t, 0) as share_t,
        case when var_h < 0 then 0 else var_h end / nullif(n_h, 0) as share_h
    from rates
),

newcombe as (
    -- The uplift is lowest with the treated rate at its Wilson low bound and the holdout's at its
    -- high bound, highest the other way round; the two groups' distances from their estimates add
    -- in quadrature, as independent errors do. Asymmetric where a rate is near 0 or 1.
    select
        *,
        sqrt(power(p_t - wilson_low_t, 2) + power(wilson_high_h - p_h, 2)) as conversion_below,
        sqrt(power(wilson_high_t - p_t, 2) + power(p_h - wilson_low_h, 2)) as conversion_above
    from errors
),

welch as (
    select
        *,
        sqrt(revenue_se2) as revenue_se,
        revenue_se2 * revenue_se2
            / nullif(share_t * share_t / nullif(n_t - 1, 0) + share_h * share_h / nullif(n_h - 1, 0), 0)
            as revenue_df
    from newcombe
),

final as (
    select
        campaign,
        n_t as treated_customers,
        n_h as holdout_customers,
        sent_t as treated_sent_customers,
        x_t as treated_converted,
        x_h as holdout_converted,
        waiting as customers_waiting,
        {{ attiva.round_stat('p_t') }} as treated_conversion_rate,
        {{ attiva.round_stat('p_h') }} as holdout_conversion_rate,
        {{ attiva.round_stat('conversion_uplift') }} as conversion_uplift,
        {{ attiva.round_stat('conversion_uplift / nullif(p_h, 0)') }} as conversion_uplift_relative,
        {{ attiva.round_stat('conversion_uplift - conversion_below') }} as conversion_uplift_ci_low,
        {{ attiva.round_stat('conversion_uplift + conversion_above') }} as conversion_uplift_ci_high,
        {{ attiva.round_stat('mean_t') }} as treated_revenue_per_customer,
        {{ attiva.round_stat('mean_h') }} as holdout_revenue_per_customer,
        {{ attiva.round_stat('revenue_uplift') }} as revenue_uplift,
        {{ attiva.round_stat('revenue_uplift / nullif(mean_h, 0)') }} as revenue_uplift_relative,
        {{ attiva.round_stat('revenue_df') }} as revenue_welch_df,
        {{ attiva.round_stat('revenue_uplift - ' ~ attiva.t_quantile_975('revenue_df') ~ ' * revenue_se') }}
            as revenue_uplift_ci_low,
        {{ attiva.round_stat('revenue_uplift + ' ~ attiva.t_quantile_975('revenue_df') ~ ' * revenue_se') }}
            as revenue_uplift_ci_high,
        coalesce(n_t < {{ min_group }} or n_h < {{ min_group }} or x_t + x_h < {{ min_conversions }}, true)
            as too_small_to_say
    from welch
)

select * from final
