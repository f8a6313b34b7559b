-- Birthday: the customer's birthday is today in their own timezone (marts.customers.timezone).
-- Someone born on 29 February celebrates on 28 February in other years. The occurrence
-- starts at the customer's local midnight (in UTC) and holds for their local day.
with customers as (
    select
        customer_id,
        first_name,
        birthday_month,
        birthday_day,
        {{ attiva.to_local_time(attiva.as_of(), 'timezone') }} as local_now
    from {{ ref('customers') }}
    where birthday_month is not null and birthday_day is not null
),

local_days as (
    select
        *,
        cast(extract(year from local_now) as integer) as local_year,
        cast(extract(month from local_now) as integer) as local_month,
        cast(extract(day from local_now) as integer) as local_day,
        -- 28 February of a year without a 29th: tomorrow is already March.
        cast(extract(month from {{ dbt.dateadd('day', 1, 'local_now') }}) as integer) as tomorrow_month,
        {{ dbt.datediff(dbt.date_trunc('day', 'local_now'), 'local_now', 'second') }} as seconds_since_local_midnight
    from customers
),

final as (
    select
        customer_id || ':' || cast(local_year as {{ dbt.type_string() }}) as trigger_key,
        customer_id,
        {{ dbt.dateadd('second', '-seconds_since_local_midnight', attiva.as_of()) }} as occurred_at,
        first_name
    from local_days
    where (birthday_month = local_month and birthday_day = local_day)
       or (birthday_month = 2 and birthday_day = 29 and local_month = 2 and local_day = 28 and tomorrow_month = 3)
)

select * from final
