-- Each customer's favourite category and product: what they bought most (by quantity,
-- then most recently), else what they looked at most in the last 30 days.
-- Incremental: a run recomputes the affected customers (int_customers__affected).

-- depends_on: {{ ref('int_customers__affected') }}
with
{% if is_incremental() %}
affected_customers as ({{ attiva.affected_customers() }}),
{% endif %}

bought as (
    select i.customer_id, i.product_id, p.category, sum(i.quantity) as weight, max(i.ordered_at) as last_at, 2 as evidence
    from {{ ref('order_items') }} as i
    inner join {{ ref('products') }} as p on i.product_id = p.product_id
    where i.is_completed and i.customer_id is not null and i.ordered_at <= {{ attiva.as_of() }}
      {{- attiva.only_affected('i.customer_id') }}
    group by i.customer_id, i.product_id, p.category
),

viewed as (
    select e.customer_id, e.product_id, p.category, count(*) as weight, max(e.occurred_at) as last_at, 1 as evidence
    from {{ ref('events') }} as e
    inner join {{ ref('products') }} as p on e.product_id = p.product_id
    where e.event_type = 'product_view' and e.customer_id is not null
      and e.occurred_at <= {{ attiva.as_of() }}
      and e.occurred_at >= {{ dbt.dateadd('day', -30, attiva.as_of()) }}
      {{- attiva.only_affected('e.customer_id') }}
    group by e.customer_id, e.product_id, p.category
),

signals as (
    select * from bought
    union all
    select v.* from viewed as v
    where not exists (select 1 from bought as b where b.customer_id = v.customer_id)
),

top_product as (
    select customer_id, product_id,
           row_number() over (partition by customer_id order by weight desc, last_at desc, product_id) as product_rank
    from signals
),

top_category as (
    select customer_id, category,
           row_number() over (partition by customer_id order by sum(weight) desc, max(last_at) desc, category) as category_rank
    from signals
    group by customer_id, category
),

computed as (
    select tp.customer_id, tp.product_id as favourite_product_id, tc.category as favourite_category
    from top_product as tp
    inner join top_category as tc on tp.customer_id = tc.customer_id and tc.category_rank = 1
    where tp.product_rank = 1
),

final as (
    {{ attiva.per_customer_rows('computed', ['favourite_product_id', 'favourite_category']) }}
)

select * from final
