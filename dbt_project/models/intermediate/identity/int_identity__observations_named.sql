-- Records that carry one shared email or phone under one name: one person. A shared identifier
-- (a role mailbox, a family's address or phone: int_identity__nodes) merges nobody, but among
-- the few people who use it a name tells each apart: the guest order Salvatore Giordano placed
-- with his hotel's amministrazione@ joins his CRM contact, which carries that mailbox under his
-- name; his colleague's order under hers joins hers. The name must be the same once folded
-- (macro name_key), not merely alike: 'M. Rossi' beside Marco and Maria Rossi could be either.
-- Only records (CRM contacts, shop accounts, guest orders) and only emails and phones: a
-- device or a social handle says nothing about whose the name is.
--
-- Each group of records (one shared identifier, one name) is a star: every record observes
-- the group's first record. `_run_at` is the newest run that wrote any of the group's
-- observations or re-derived its identifier. An incremental build needs nothing more: a
-- record joining or leaving a group re-derives the identifier and every record that carries
-- it (int_identity__nodes), so int_identity__components recomputes both ends of each link.
-- A table, rebuilt each run from the observations of shared identifiers only.
{{ config(materialized='table') }}

with shared as (
    select node, _run_at from {{ ref('int_identity__nodes') }}
    where is_shared and identifier_type in ('email', 'phone')
),

named as (
    select o.anchor_node, o.identifier_node, o.name_key, o.first_seen_at, o.last_seen_at,
           case when o._run_at > s._run_at then o._run_at else s._run_at end as _run_at
    from {{ ref('int_identity__observations') }} as o
    inner join shared as s on o.identifier_node = s.node
    where o.name_key is not null
        and {{ dbt.split_part('o.anchor_node', "':'", 1) }} in ('crm_contact_id', 'shop_customer_id', 'guest_order_id')
),

groups as (
    select identifier_node, name_key, min(anchor_node) as first_record, max(_run_at) as _run_at
    from named
    group by identifier_node, name_key
    having count(distinct anchor_node) > 1
),

final as (
    select
        n.anchor_node,
        g.first_record as identifier_node,
        cast(null as {{ dbt.type_string() }}) as name_key,
        'shared_under_one_name' as source,
        min(n.first_seen_at) as first_seen_at,
        max(n.last_seen_at) as last_seen_at,
        max(g._run_at) as _run_at
    from named as n
    inner join groups as g on n.identifier_node = g.identifier_node and n.name_key = g.name_key
    where n.anchor_node <> g.first_record
    group by n.anchor_node, g.first_record
)

select * from final
