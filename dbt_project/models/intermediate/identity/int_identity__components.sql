-- Connected components of the identity graph by min-label propagation: each round every
-- node takes the smallest label among itself and its neighbours. Plain SQL in a fixed
-- number of rounds (no recursive CTE), so it runs on any engine; the data test
-- `assert_identity_graph_converged` fails the build if the rounds were not enough.
with edges as (
    select node_number, neighbour_number from {{ ref('int_identity__edges') }}
),

labels_0 as (
    select distinct node_number, node_number as label from edges
),
{% for i in range(1, var('identity_max_iterations') + 1) %}
labels_{{ i }} as (
    select e.node_number, min(l.label) as label
    from edges as e
    inner join labels_{{ i - 1 }} as l on e.neighbour_number = l.node_number
    group by e.node_number
),
{% endfor %}
final as (
    select node_number, label as component from labels_{{ var('identity_max_iterations') }}
)

select * from final
