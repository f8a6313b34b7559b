-- A/B tests: every campaign step that sent two or more variants (templates; a step lists several
-- in its policy, activations/messaging/policy.py), each variant against the step's other variants
-- together. Variants are drawn by a hash of campaign and customer, so the groups differ only by
-- the variant and by chance; the intervals say how much chance could explain. Compared: open rate
-- and click rate (of delivered messages: what a subject line or a layout changes) and conversion
-- rate (messages with an attributed order, of sent messages), each difference with a 95 %
-- interval (two proportions, normal approximation, unpooled standard error).
-- too_small_to_say when either side delivered fewer than uplift_min_group_size messages; a
-- difference whose events (opens, clicks, conversions) number fewer than uplift_min_conversions on
-- both sides together has no interval: the approximation does not hold there.

{% set min_group = var('uplift_min_group_size', 30) %}
{% set min_events = var('uplift_min_conversions', 10) %}

with per_variant as (
    select campaign, step, variant, sent, delivered, opened, clicked, converted
    from {{ ref('campaign_performance') }}
    where sent > 0
),

tested as (
    select campaign, step, count(*) as variants
    from per_variant
    group by campaign, step
    having count(*) > 1
),

with_others as (
    select
        v.*,
        t.variants,
        sum(v.sent) over (partition by v.campaign, v.step) - v.sent as other_sent,
        sum(v.delivered) over (partition by v.campaign, v.step) - v.delivered as other_delivered,
        sum(v.opened) over (partition by v.campaign, v.step) - v.opened as other_opened,
        sum(v.clicked) over (partition by v.campaign, v.step) - v.clicked as other_clicked,
        sum(v.converted) over (partition by v.campaign, v.step) - v.converted as other_converted
    from per_variant as v
    join tested as t on t.campaign = v.campaign and t.step = v.step
),

rates as (
    select
        *,
        cast(opened as double) / nullif(delivered, 0) as open_rate,
        cast(other_opened as double) / nullif(other_delivered, 0) as other_open_rate,
        cast(clicked as double) / nullif(delivered, 0) as click_rate,
        cast(other_clicked as double) / nullif(other_delivered, 0) as other_click_rate,
        cast(converted as double) / nullif(sent, 0) as conversion_rate,
        cast(other_converted as double) / nullif(other_sent, 0) as other_conversion_rate
    from with_others
),

halves as (
    select
        *,
        1.959964 * sqrt(open_rate * (1 - open_rate) / nullif(delivered, 0)
                        + other_open_rate * (1 - other_open_rate) / nullif(other_delivered, 0)) as open_half,
        1.959964 * sqrt(click_rate * (1 - click_rate) / nullif(delivered, 0)
                        + other_click_rate * (1 - other_click_rate) / nullif(other_delivered, 0)) as click_half,
        1.959964 * sqrt(conversion_rate * (1 - conversion_rate) / nullif(sent, 0)
                        + other_conversion_rate * (1 - other_conversion_rate) / nullif(other_sent, 0))
            as conversion_half
    from rates
),

final as (
    select
        campaign,
        step,
        variant,
        variants as variants_in_step,
        sent,
        delivered,
        opened,
        clicked,
        converted,
        other_sent,
        other_delivered,
        {{ attiva.round_stat('open_rate') }} as open_rate,
        {{ attiva.round_stat('other_open_rate') }} as other_open_rate,
        {{ attiva.round_stat('open_rate - other_open_rate') }} as open_rate_difference,
        case when opened + other_opened >= {{ min_events }}
            then {{ attiva.round_stat('open_rate - other_open_rate - open_half') }} end as open_rate_difference_ci_low,
        case when opened + other_opened >= {{ min_events }}
            then {{ attiva.round_stat('open_rate - other_open_rate + open_half') }} end as open_rate_difference_ci_high,
        {{ attiva.round_stat('click_rate') }} as click_rate,
        {{ attiva.round_stat('other_click_rate') }} as other_click_rate,
        {{ attiva.round_stat('click_rate - other_click_rate') }} as click_rate_difference,
        case when clicked + other_clicked >= {{ min_events }}
            then {{ attiva.round_stat('click_rate - other_click_rate - click_half') }} end
            as click_rate_difference_ci_low,
        case when clicked + other_clicked >= {{ min_events }}
            then {{ attiva.round_stat('click_rate - other_click_rate + click_half') }} end
            as click_rate_difference_ci_high,
        {{ attiva.round_stat('conversion_rate') }} as conversion_rate,
        {{ attiva.round_stat('other_conversion_rate') }} as other_conversion_rate,
        {{ attiva.round_stat('conversion_rate - other_conversion_rate') }} as conversion_rate_difference,
        case when converted + other_converted >= {{ min_events }}
            then {{ attiva.round_stat('conversion_rate - other_conversion_rate - conversion_half') }} end
            as conversion_rate_difference_ci_low,
        case when converted + other_converted >= {{ min_events }}
            then {{ attiva.round_stat('conversion_rate - other_conversion_rate + conversion_half') }} end
            as conversion_rate_difference_ci_high,
        delivered < {{ min_group }} or other_delivered < {{ min_group }} as too_small_to_say
    from halves
)

select * from final
