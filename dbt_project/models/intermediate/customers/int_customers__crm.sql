-- The CRM's view of each customer: the furthest lifecycle stage any of their contacts
-- reached, when they reached each stage, and how they first came in.
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }}
    where not is_shared {{ attiva.only_affected() }}
),

contacts as (
    select o.customer_id, c.*,
        case c.lifecycle_stage when 'customer' then 4 when 'sql' then 3 when 'mql' then 2 when 'lead' then 1 else 0 end
            as stage_rank
    from {{ ref('stg_crm__contacts') }} as c
    inner join owners as o on o.node = 'crm_contact_id:' || c.contact_id
    where c.is_latest_version
),

computed as (
    select
        customer_id,
        case max(stage_rank) when 4 then 'customer' when 3 then 'sql' when 2 then 'mql' when 1 then 'lead' end
            as crm_stage,
        min_by(lead_source, case when lead_source is not null then created_at end) as crm_lead_source,
        min(became_lead_at) as became_lead_at,
        min(became_mql_at) as became_mql_at,
        min(became_sql_at) as became_sql_at,
        min(became_customer_at) as became_customer_at,
        min(created_at) as crm_created_at
    from contacts
    group by customer_id
),

final as (
    {{ attiva.per_customer_rows('computed', ['crm_stage', 'crm_lead_source', 'became_lead_at', 'became_mql_at',
                                             'became_sql_at', 'became_customer_at', 'crm_created_at']) }}
)

select * from final
