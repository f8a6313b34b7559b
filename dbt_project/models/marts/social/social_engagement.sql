-- Every social interaction with the brand (comment, reaction, share, follow, direct message, mention) that
-- was not taken back, with the customer behind it when their handle shared an email or phone in a direct
-- message (int_identity__observations_social); every other interaction is anonymous brand engagement
-- (customer_id null). A handle that typed several people's identifiers is shared and names nobody here.
with interactions as (
    select * from {{ ref('stg_social__interactions') }}
    where not is_removed
),

owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where not is_shared and {{ dbt.split_part('node', "':'", 1) }} = 'social_user_id'
),

final as (
    select
        i.platform,
        i.interaction_id,
        i.kind,
        i.occurred_at,
        cast({{ dbt.date_trunc('week', 'i.occurred_at') }} as date) as week_start,
        i.page_id,
        i.post_id,
        i.social_user_id,
        o.customer_id,
        i.reaction_type
    from interactions as i
    left join owners as o on o.node = 'social_user_id:' || i.social_user_id
)

select * from final
