-- Birthdays in the month of as_of: for a greeting or a coupon.
select
    {{ attiva.audience_contact_columns() }},
    c.birth_date,
    c.birthday_day
from {{ ref('customers') }} as c
where c.birthday_month = extract(month from {{ attiva.as_of() }})
