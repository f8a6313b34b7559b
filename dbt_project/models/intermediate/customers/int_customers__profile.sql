-- The golden record: for each field, the best value any of the person's records holds,
-- by source priority (CRM, then shop, then what they typed into a form, then a lead-ad form) and recency.
-- Emails and phones come from customer_identifiers, preferring ones only they use; how
-- many identifiers they have and when the first was seen, too.
-- This is the list of customers. Incremental: a run recomputes the affected customers
-- (int_customers__affected) and drops the ones that no longer exist.

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

all_owners as (
    select node, customer_id from {{ ref('int_identity__customer_nodes') }} where not is_shared
),

owners as (
    select node, customer_id from all_owners where 1 = 1 {{ attiva.only_affected() }}
),

crm as (
    select o.customer_id, 3 as source_priority, c.updated_at as seen_at,
           c.first_name, c.last_name, c.birth_date, c.country, c.city, c.company, c.job_title
    from {{ ref('stg_crm__contacts') }} as c
    inner join owners as o on o.node = 'crm_contact_id:' || c.contact_id
    where c.is_latest_version
),

shop as (
    select o.customer_id, 2 as source_priority, s.updated_at as seen_at,
           s.first_name, s.last_name, s.birth_date, s.country, s.city,
           cast(null as {{ dbt.type_string() }}) as company, cast(null as {{ dbt.type_string() }}) as job_title
    from {{ ref('stg_shop__customers') }} as s
    inner join owners as o on o.node = 'shop_customer_id:' || s.shop_customer_id
    where s.is_latest_version
),

forms as (
    select form_customer_id as customer_id, 1 as source_priority, occurred_at as seen_at,
           first_name, last_name, cast(null as date) as birth_date,
           cast(null as {{ dbt.type_string() }}) as country, cast(null as {{ dbt.type_string() }}) as city,
           company, cast(null as {{ dbt.type_string() }}) as job_title
    from (
        select coalesce(a.customer_id, m.customer_id) as form_customer_id, e.occurred_at, e.first_name, e.last_name,
               e.company
        from {{ ref('int_events') }} as e
        left join all_owners as a on a.node = 'shop_customer_id:' || e.shop_customer_id
        left join all_owners as m on m.node = 'email:' || e.email
        where e.event_type = 'form_submit'
        {%- if is_incremental() %}
          -- the form's owner (by account, else email) is the event's customer when it has one
          and e.customer_id in (select customer_id from affected_customers)
        {%- endif %}
    ) as f
    where form_customer_id is not null {{ attiva.only_affected('form_customer_id') }}
),

-- what a lead-ad form asked (Meta Lead Ads): the least trusted, typed on a phone inside an ad
social_leads as (
    select o.customer_id, 0 as source_priority, l.created_at as seen_at,
           l.first_name, l.last_name, cast(null as date) as birth_date,
           cast(null as {{ dbt.type_string() }}) as country, l.city,
           cast(null as {{ dbt.type_string() }}) as company, cast(null as {{ dbt.type_string() }}) as job_title
    from {{ ref('stg_social__leads') }} as l
    inner join owners as o on o.node = 'meta_lead_id:' || l.lead_id
),

records as (
    select *, cast(source_priority as {{ dbt.type_string() }}) || cast(seen_at as {{ dbt.type_string() }}) as preference
    from (select * from crm union all select * from shop union all select * from forms
          union all select * from social_leads) as r
),

-- Equally preferred values (two records updated at the same second) are ordered by the
-- value itself (after a space, which sorts before the '.' of a fractional second), so
-- every build picks the same one.
fields as (
    select
        customer_id,
        max_by(first_name, case when first_name is not null then preference || ' ' || first_name end) as first_name,
        max_by(last_name, case when last_name is not null then preference || ' ' || last_name end) as last_name,
        max_by(birth_date, case when birth_date is not null then preference || ' ' || cast(birth_date as {{ dbt.type_string() }}) end) as birth_date,
        max_by(country, case when country is not null then preference || ' ' || country end) as country,
        max_by(city, case when city is not null then preference || ' ' || city end) as city,
        max_by(company, case when company is not null then preference || ' ' || company end) as company,
        max_by(job_title, case when job_title is not null then preference || ' ' || job_title end) as job_title
    from records
    group by customer_id
),

customer_identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where 1 = 1 {{ attiva.only_affected() }}
),

identifier_counts as (
    select
        customer_id,
        count(distinct identifier_type || ':' || identifier_value) as identifiers_count,
        min(first_seen_at) as first_seen_at
    from customer_identifiers
    group by customer_id
),

identifiers as (
    select
        customer_id,
        identifier_type,
        identifier_value,
        (case when is_shared then '0' else '1' end)
        || (case source when 'crm' then '4' when 'shop' then '3' when 'orders' then '2' else '1' end)
        || cast(last_seen_at as {{ dbt.type_string() }}) as preference
    from customer_identifiers
    where identifier_type in ('email', 'phone')
),

contact_points as (
    select
        customer_id,
        max_by(case when identifier_type = 'email' then identifier_value end,
               case when identifier_type = 'email' then preference || ' ' || identifier_value end) as email,
        max_by(case when identifier_type = 'phone' then identifier_value end,
               case when identifier_type = 'phone' then preference || ' ' || identifier_value end) as phone
    from identifiers
    group by customer_id
),

customers as (
    select distinct customer_id from owners
),

computed as (
    select
        c.customer_id,
        cp.email,
        cp.phone,
        f.first_name,
        f.last_name,
        f.birth_date,
        f.country,
        f.city,
        f.company,
        f.job_title,
        ic.identifiers_count,
        ic.first_seen_at
    from customers as c
    left join fields as f on c.customer_id = f.customer_id
    left join contact_points as cp on c.customer_id = cp.customer_id
    left join identifier_counts as ic on c.customer_id = ic.customer_id
),

final as (
    {{ attiva.per_customer_rows('computed', ['email', 'phone', 'first_name', 'last_name', 'birth_date', 'country',
                                             'city', 'company', 'job_title', 'identifiers_count',
                                             'first_seen_at']) }}
)

select * from final
