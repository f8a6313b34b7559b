-- Label propagation stopped before every connected identifier agreed on one label:
-- raise the dbt var identity_max_iterations.
select node_number, component
from {{ ref('int_identity__components') }}
where not is_converged
