-- Every identifier of the graph, numbered for label propagation, with the evidence of how
-- many different people use it. An email, phone or device that records attribute to more
-- than `identity_max_people_per_identifier` different people (a role mailbox such as
-- info@company.it, a family phone, a shared tablet) is shared: it stays an identifier
-- of each of them but never merges them.
-- Kept incrementally: a run re-derives only the identifiers of observations written since
-- its last run, from all of their observations. A node keeps its number for good (new
-- ones are numbered after the existing ones), so numbers are labels, not an order:
-- whatever depends on "oldest" uses first_seen_at.
{{ config(materialized=attiva.incremental_materialization(), unique_key='node', incremental_strategy=attiva.upsert_strategy()) }}

with observations as (
    select * from {{ ref('int_identity__observations') }}
),

{% if is_incremental() %}
changed_observations as (
    {{ attiva.written_since_last_run(ref('int_identity__observations')) }}
),

changed as (
    select anchor_node as node from changed_observations
    union
    select identifier_node from changed_observations
),
{% endif %}

ends as (
    select anchor_node as node, anchor_node as other_node, name_key, first_seen_at, last_seen_at from observations
    {% if is_incremental() %}where anchor_node in (select node from changed){% endif %}
    union all
    select identifier_node, anchor_node, name_key, first_seen_at, last_seen_at from observations
    {% if is_incremental() %}where identifier_node in (select node from changed){% endif %}
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

numbered as (
    {% if is_incremental() %}
    select e.*, t.node_number
    from evidence as e
    inner join {{ this }} as t on e.node = t.node
    union all
    select e.*,
        (select coalesce(max(node_number), 0) from {{ this }})
        + row_number() over (order by e.first_seen_at, e.node) as node_number
    from evidence as e
    where not exists (select 1 from {{ this }} as t where t.node = e.node)
    {% else %}
    select *, row_number() over (order by first_seen_at, node) as node_number
    from evidence
    {% endif %}
),

final as (
    select
        node_number,
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
        end as is_shared,
        {{ attiva.run_at() }} as _run_at
    from numbered
)

select * from final
