-- The device tokens a mobile push can reach each customer on: each app installation's latest registration,
-- tied to the customer through the logged-in account (shop_customer_id) or its email, as consent records are.
-- A token seen under two customers (a shared tablet, a re-login) belongs to the one who registered it last.
-- Tokens FCM reported gone (UNREGISTERED) and those of erased people are left out at send time, by
-- activation.push_tokens_retired (activations/messaging/push.py): an uninstalled app's token stays here
-- until a later export drops it, but is never sent to again.
with registrations as (
    select installation_id, shop_customer_id, email, push_token, platform, app_version, registered_at
    from {{ ref('stg_app__installations') }}
    where is_latest_registration
),

nodes as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
),

by_identifier as (
    select r.*, 1 as match_rank, n.customer_id
    from registrations as r
    inner join nodes as n on n.node = 'shop_customer_id:' || r.shop_customer_id
    where r.shop_customer_id is not null
    union all
    select r.*, 2 as match_rank, n.customer_id
    from registrations as r
    inner join nodes as n on n.node = 'email:' || r.email
    where r.email is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by push_token
            order by registered_at desc, match_rank, customer_id, installation_id
        ) as token_rank
    from by_identifier
),

final as (
    select
        customer_id,
        push_token,
        platform,
        app_version,
        installation_id,
        registered_at
    from ranked
    where token_rank = 1
)

select * from final
