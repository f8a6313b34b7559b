-- Every identifier of the graph, numbered for label propagation, with the evidence of how
-- many different people use it. An email, phone or device is shared when it links more
-- people than its type allows (`identity_max_people_per_email`, `_phone`, `_device_id`,
-- `_social_user_id`): a role mailbox such as info@company.it, a family phone, a family
-- computer, a social handle that typed several people's emails. A shared
-- identifier stays an identifier of each of them but never merges them.
--
-- Who counts as a person (docs/identity.md): the CRM contacts, shop accounts, emails and
-- phones seen with an identifier X are its neighbours (devices and guest orders are not
-- people). A neighbour is somebody when it has another strong identifier (CRM contact,
-- shop account, email, phone; never X itself); one without is nobody in particular (a
-- duplicate contact with only X): it attaches to whoever else uses X. Neighbours that
-- share another identifier or a name are one person (two rounds of min-label propagation
-- among X's neighbours: two hops of joins, no graph search). `distinct_people` is the
-- number of persons left, or the number of different names the records carry with X if
-- that is more (named records with nothing but X).
--
-- Kept incrementally: a run re-derives the identifiers of observations written since its
-- last run and their neighbours (whose people those observations may change), from all
-- of their observations. A node keeps its number for good (new ones are numbered after
-- the existing ones), so numbers are labels, not an order: whatever depends on "oldest"
-- uses first_seen_at.
{{ config(materialized=attiva.incremental_materialization(), unique_key='node', incremental_strategy=attiva.upsert_strategy()) }}

{%- set strong = "('crm_contact_id', 'shop_customer_id', 'email', 'phone')" %}
{%- set sharable = "('email', 'phone', 'device_id', 'social_user_id')" %}
{%- set limits = {
    'email': var('identity_max_people_per_email'),
    'phone': var('identity_max_people_per_phone'),
    'device_id': var('identity_max_people_per_device_id'),
    'social_user_id': var('identity_max_people_per_social_user_id'),
} %}

with observations as (
    select * from {{ ref('int_identity__observations') }}
),

variants as (
    select variant, given_name from {{ ref('first_name_variants') }}
),

-- both directions of every observation between two different identifiers, with their types
links as (
    select
        anchor_node as node,
        identifier_node as neighbour,
        name_key,
        {{ dbt.split_part('anchor_node', "':'", 1) }} as node_type,
        {{ dbt.split_part('identifier_node', "':'", 1) }} as neighbour_type
    from observations
    where anchor_node <> identifier_node
    union all
    select
        identifier_node,
        anchor_node,
        name_key,
        {{ dbt.split_part('identifier_node', "':'", 1) }},
        {{ dbt.split_part('anchor_node', "':'", 1) }}
    from observations
    where anchor_node <> identifier_node
),

{% if is_incremental() %}
changed_observations as (
    {{ attiva.written_since_last_run(ref('int_identity__observations')) }}
),

changed as (
    select anchor_node as node from changed_observations
    union
    select identifier_node from changed_observations
),

rederived as (
    select node from changed
    union
    select l.neighbour from links as l inner join changed as c on l.node = c.node
),
{% endif %}

ends as (
    select anchor_node as node, name_key, first_seen_at, last_seen_at from observations
    {% if is_incremental() %}where anchor_node in (select node from rederived){% endif %}
    union all
    select identifier_node, name_key, first_seen_at, last_seen_at from observations
    {% if is_incremental() %}where identifier_node in (select node from rederived){% endif %}
),

sightings as (
    select
        node,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from ends
    group by node
),

-- the names seen with each identifier that can be shared (macro name_key: 'mario rossi')
names_seen as (
    select distinct
        node,
        name_key,
        {{ dbt.split_part('name_key', "' '", 1) }} as first_name,
        {{ dbt.split_part('name_key', "' '", 2) }} as last_name
    from ends
    where name_key is not null and {{ dbt.split_part('node', "':'", 1) }} in {{ sharable }}
),

-- ... with the given name each part stands for (seed first_name_variants; a row for each when a
-- diminutive stands for two), for macro same_name
names_at as (
    select n.*, coalesce(f.given_name, n.first_name) as first_given, coalesce(l.given_name, n.last_name) as last_given
    from names_seen as n
    left join variants as f on n.first_name = f.variant
    left join variants as l on n.last_name = l.variant
),

-- the records (CRM contacts, shop accounts, guest orders) that carry each email or phone
-- with a name
record_names as (
    select distinct o.anchor_node as record, o.identifier_node as node, o.name_key
    from observations as o
    where o.name_key is not null
        and {{ dbt.split_part('o.identifier_node', "':'", 1) }} in ('email', 'phone')
        and {{ dbt.split_part('o.anchor_node', "':'", 1) }} in ('crm_contact_id', 'shop_customer_id', 'guest_order_id')
),

-- two names whose records say they are one person under a changed surname: one record
-- carried both (a contact's new version after a marriage), or the two records share
-- another email or phone besides this one (a shop account under a maiden name beside
-- the CRM contact); their first names must still be alike (below)
renamed as (
    select x1.node, x1.name_key, x2.name_key as other_name_key
    from record_names as x1
    inner join record_names as x2
        on x1.node = x2.node and x2.name_key < x1.name_key and x1.record = x2.record
    where x1.node in (select node from names_seen)
    union
    select x1.node, x1.name_key, x2.name_key
    from record_names as x1
    inner join record_names as x2
        on x1.node = x2.node and x2.name_key < x1.name_key and x1.record <> x2.record
    inner join record_names as y1 on x1.record = y1.record and y1.node <> x1.node
    inner join record_names as y2 on x2.record = y2.record and y1.node = y2.node
    where x1.node in (select node from names_seen)
),

-- the names that count no further: another that sorts before it names the same person
-- (macro same_name: 'M. Rossi', 'Mrio Rossi' and 'Rossi, Mario' beside 'Mario Rossi'), or
-- is the same first name under a changed surname (renamed)
same_person_names as (
    select a.node, a.name_key
    from names_at as a
    inner join names_at as b
        on a.node = b.node and b.name_key < a.name_key
        and {{ attiva.same_name('a', 'b') }}
    union
    select a.node, a.name_key
    from renamed as r
    inner join names_at as a on r.node = a.node and r.name_key = a.name_key
    inner join names_at as b on r.node = b.node and r.other_name_key = b.name_key
    where {{ attiva.first_names_alike('a.first_name', 'a.first_given', 'b.first_name', 'b.first_given') }}
),

-- how many different names
name_counts as (
    select a.node, count(distinct a.name_key) as distinct_names  -- a diminutive of two names is two rows
    from names_at as a
    left join same_person_names as s on a.node = s.node and a.name_key = s.name_key
    where s.node is null
    group by a.node
),

-- the identifiers that can be shared, and their neighbours that can be people: a device is
-- not (the family computer is not one more person beside each of its users), nor is a
-- guest order (one nameless purchase: it attaches to whoever else typed the same values)
candidate_links as (
    select distinct node, neighbour
    from links
    where node_type in {{ sharable }} and neighbour_type in {{ strong }}
    {% if is_incremental() %}and node in (select node from rederived){% endif %}
),

-- what tells a neighbour apart: its other strong identifiers
neighbour_identifiers as (
    select node as neighbour, neighbour as person_key from links
    where node_type in {{ strong }} and neighbour_type in {{ strong }}
    {% if is_incremental() %}and node in (select neighbour from candidate_links){% endif %}
),

-- a neighbour with another strong identifier is somebody; one without is nobody in
-- particular and attaches to whoever else uses X
keyed as (
    select distinct c.node, c.neighbour, k.person_key
    from candidate_links as c
    inner join neighbour_identifiers as k on c.neighbour = k.neighbour and k.person_key <> c.node
),

-- ...except on a social handle, where anyone types anything into a direct message: the
-- identifiers only the handle carries are one person of their own ('unknown:' || X), so a
-- new address typed beside a customer's makes the handle shared instead of joining them
somebody as (
    select distinct node, neighbour from keyed
    union
    select distinct c.node, 'unknown:' || c.node
    from candidate_links as c
    left join keyed as k on c.node = k.node and c.neighbour = k.neighbour
    where k.node is null and {{ dbt.split_part('c.node', "':'", 1) }} = 'social_user_id'
),

-- identifiers with two somebodies or more: are they one person?
crowded as (
    select node from somebody group by node having count(*) > 1
),

-- the names the somebodies of crowded identifiers carry, with their given names
neighbour_names_seen as (
    select distinct
        s.node,
        s.neighbour,
        {{ dbt.split_part('l.name_key', "' '", 1) }} as first_name,
        {{ dbt.split_part('l.name_key', "' '", 2) }} as last_name
    from somebody as s
    inner join crowded as c on s.node = c.node
    inner join links as l on s.neighbour = l.node
    where l.name_key is not null
),

neighbour_names as (
    select n.*, coalesce(f.given_name, n.first_name) as first_given, coalesce(l.given_name, n.last_name) as last_given
    from neighbour_names_seen as n
    left join variants as f on n.first_name = f.variant
    left join variants as l on n.last_name = l.variant
),

-- the keys that make two neighbours one person: a shared identifier, the neighbour itself
-- (a shop account and its email seen on one device), or names of one person (macro
-- same_name), keyed by the first of the two neighbours
person_keys as (
    select k.node, k.neighbour, k.person_key from keyed as k
    inner join crowded as c on k.node = c.node
    union
    select s.node, s.neighbour, s.neighbour from somebody as s
    inner join crowded as c on s.node = c.node
    union
    select a.node, a.neighbour, 'name:' || case when a.neighbour < b.neighbour then a.neighbour else b.neighbour end
    from neighbour_names as a
    inner join neighbour_names as b
        on a.node = b.node and a.neighbour <> b.neighbour
        and {{ attiva.same_name('a', 'b') }}
),

label_0 as (
    select node, neighbour, min(person_key) as label from person_keys group by node, neighbour
),
{%- for i in range(1, 3) %}

label_{{ i }} as (
    select a.node, a.neighbour, min(l.label) as label
    from person_keys as a
    inner join person_keys as b on a.node = b.node and a.person_key = b.person_key
    inner join label_{{ i - 1 }} as l on b.node = l.node and b.neighbour = l.neighbour
    group by a.node, a.neighbour
),
{%- endfor %}

people as (
    select node, count(distinct label) as distinct_people from label_2 group by node
    union all
    select node, count(*) from somebody
    where node not in (select node from crowded)
    group by node
),

-- people told apart by their identifiers, or by the names the records carry with X,
-- whichever is more (two named records that share only X are two people)
evidence as (
    select
        s.node,
        s.first_seen_at,
        s.last_seen_at,
        case when coalesce(p.distinct_people, 0) > coalesce(n.distinct_names, 0) then p.distinct_people
             else coalesce(n.distinct_names, 0) end as distinct_people
    from sightings as s
    left join people as p on s.node = p.node
    left join name_counts as n on s.node = n.node
),

numbered as (
    {% if is_incremental() %}
    select e.*, t.node_number
    from evidence as e
    inner join {{ this }} as t on e.node = t.node
    union all
    select e.*,
        (select coalesce(max(node_number), 0) from {{ this }})
        + row_number() over (order by e.first_seen_at, e.node) as node_number
    from evidence as e
    where not exists (select 1 from {{ this }} as t where t.node = e.node)
    {% else %}
    select *, row_number() over (order by first_seen_at, node) as node_number
    from evidence
    {% endif %}
),

typed as (
    select
        node_number,
        node,
        {{ dbt.split_part('node', "':'", 1) }} as identifier_type,
        substr(node, length({{ dbt.split_part('node', "':'", 1) }}) + 2) as identifier_value,
        first_seen_at,
        last_seen_at,
        distinct_people
    from numbered
),

final as (
    select
        *,
        case identifier_type
            {%- for kind, limit in limits.items() %}
            when '{{ kind }}' then {{ limit }}
            {%- endfor %}
        end as max_people,
        case identifier_type
            {%- for kind, limit in limits.items() %}
            when '{{ kind }}' then distinct_people > {{ limit }}
            {%- endfor %}
            else false
        end as is_shared,
        {{ attiva.run_at() }} as _run_at
    from typed
)

select * from final
