-- Label propagation stopped before every connected identifier agreed on one label:
-- raise the dbt var identity_max_iterations.
select e.node_number, e.neighbour_number
from {{ ref('int_identity__edges') }} as e
inner join {{ ref('int_identity__components') }} as a on e.node_number = a.node_number
inner join {{ ref('int_identity__components') }} as b on e.neighbour_number = b.node_number
where a.component <> b.component
