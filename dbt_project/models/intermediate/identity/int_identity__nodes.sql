-- Every identifier of the graph, numbered for label propagation, with the evidence of how
-- many different people use it. An email, phone or device that records attribute to more
-- than `identity_max_people_per_identifier` different people (a role mailbox such as
-- info@company.it, a family phone, a shared tablet) is shared: it stays an identifier
-- of each of them but never merges them.
with observations as (
    select * from {{ ref('int_identity__observations') }}
),

ends as (
    select anchor_node as node, anchor_node as other_node, name_key, first_seen_at, last_seen_at from observations
    union all
    select identifier_node, anchor_node, name_key, first_seen_at, last_seen_at from observations
),

evidence as (
    select
        node,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        count(distinct name_key) as distinct_names,
        -- a device's people are the accounts and emails that logged in on it
        count(distinct case when other_node like 'shop_customer_id:%' then other_node end) as distinct_accounts,
        count(distinct case when other_node like 'email:%' then other_node end) as distinct_emails
    from ends
    group by node
),

final as (
    select
        row_number() over (order by first_seen_at, node) as node_number,
        node,
        {{ dbt.split_part('node', "':'", 1) }} as identifier_type,
        substr(node, length({{ dbt.split_part('node', "':'", 1) }}) + 2) as identifier_value,
        first_seen_at,
        last_seen_at,
        distinct_names,
        distinct_accounts,
        distinct_emails,
        case
            when node like 'email:%' or node like 'phone:%'
                then distinct_names > {{ var('identity_max_people_per_identifier') }}
            when node like 'device_id:%'
                then distinct_accounts > {{ var('identity_max_people_per_identifier') }}
                  or distinct_emails > {{ var('identity_max_people_per_identifier') }}
            else false
        end as is_shared
    from evidence
)

select * from final
