-- The graph's observations: what the records show (int_identity__observations), the records
-- one shared identifier joins under one name (int_identity__observations_named) and what
-- probabilistic matching says belong together (int_identity__observations_matched). Kept
-- apart so int_identity__nodes, which decides which identifiers are shared, is built
-- before matching and never counts matching's own links: a link that made an identifier
-- look unshared would let that identifier support the link at the next run.
{{ config(materialized='view') }}

select anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _run_at
from {{ ref('int_identity__observations') }}
union all
select anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _run_at
from {{ ref('int_identity__observations_named') }}
union all
select anchor_node, identifier_node, name_key, source, first_seen_at, last_seen_at, _run_at
from {{ ref('int_identity__observations_matched') }}
