"""dbt creates the matching tables (on-run-start) with the matching step's own DDL: the copy in
dbt_project/macros/matching.sql must not drift from activations/identity/links.py."""

from __future__ import annotations

import duckdb

from activations.identity import links
from tests.ddl import columns, declared


def test_the_macro_ddl_is_the_matching_steps_ddl():
    assert declared("matching.sql", "matching_tables") == {name: columns(ddl) for name, ddl in links.TABLES.items()}


def test_ensure_tables_leaves_existing_links_alone():
    con = duckdb.connect()
    links.ensure_tables(con)
    con.execute("insert into matching.links (pair_id, status) values ('pair_1', 'review')")
    links.ensure_tables(con)
    assert con.execute("select pair_id from matching.review_queue").fetchall() == [("pair_1",)]


def test_the_review_queue_leaves_out_pairs_the_rules_already_made_one_customer():
    from activations.identity import review

    con = duckdb.connect()
    links.ensure_tables(con)
    con.execute("""insert into matching.links (pair_id, record_id_l, record_id_r, match_weight, match_probability, status)
                   values ('pair_apart', 'crm_contact_id:1', 'shop_customer_id:1', 4.0, 0.9, 'review'),
                          ('pair_joined', 'crm_contact_id:2', 'shop_customer_id:2', 5.0, 0.95, 'review')""")
    assert [p["pair_id"] for p in review.queue(con)] == ["pair_joined", "pair_apart"]  # no graph yet: both
    con.execute("create schema intermediate")
    con.execute("""create table intermediate.int_identity__customer_nodes as select * from (values
                   ('crm_contact_id:1', 'cus_a'), ('shop_customer_id:1', 'cus_b'),
                   ('crm_contact_id:2', 'cus_c'), ('shop_customer_id:2', 'cus_c')) as t(node, customer_id)""")
    assert [p["pair_id"] for p in review.queue(con)] == ["pair_apart"]


def test_the_review_listing_shows_the_most_probable_pairs_and_says_how_many_more():
    from activations.identity import review

    pairs = [{"pair_id": f"pair_{i}", "record_id_l": f"crm_contact_id:{i}", "record_id_r": f"shop_customer_id:{i}",
              "match_weight": 9.0 - i, "match_probability": 0.98 - i / 100, "evidence": None} for i in range(5)]
    listing = review.format_queue(pairs, limit=2)
    assert listing.splitlines()[0].startswith("5 pair(s) waiting for review") and "2 most probable" in listing
    assert "pair_0" in listing and "pair_1" in listing and "pair_2" not in listing
    assert "3 more" in listing
    assert "pair_4" in review.format_queue(pairs, limit=0)


def test_a_pairs_id_is_what_earlier_versions_gave_it():
    """Reviewers' decisions are kept by pair id: the SQL that names pairs now gives the ids the earlier Python did."""
    import hashlib

    pairs = [("crm_contact_id:C1", "shop_customer_id:S1"), ("guest_order_id:Ö-7", "shop_customer_id:été")]
    got = duckdb.connect().execute(f"select {links.pair_id_sql('l', 'r')} from (values (?, ?), (?, ?)) as t(l, r)",
                                   [v for pair in pairs for v in pair]).fetchall()
    assert [g for (g,) in got] == ["pair_" + hashlib.sha256(f"{left}|{right}".encode()).hexdigest()[:12]
                                    for left, right in pairs]


def test_the_status_a_link_gets_in_the_warehouse_is_the_models_merge_and_review_rule():
    from activations.identity.linkage import LinkageSettings
    from activations.identity.matching import status_sql

    settings = LinkageSettings(match_threshold=0.95, review_threshold=0.8)
    rows = [(p, corroborated, contradicted) for p in (0.5, 0.8, 0.9, 0.95, 0.99)
            for corroborated in (True, False) for contradicted in (True, False, None)]
    got = duckdb.connect().execute(
        f"select {status_sql(settings)} from (values {', '.join(['(?, ?, ?)'] * len(rows))}) "
        "as t(match_probability, corroborated, contradicted)", [v for row in rows for v in row]).fetchall()
    expected = []
    for p, corroborated, contradicted in rows:
        pair = {"match_probability": p, "corroborated": corroborated, "contradicted": contradicted}
        expected.append("merged" if settings.merges(pair) else "review" if settings.reviews(pair) else None)
    assert [g for (g,) in got] == expected
    assert expected.count("merged") == 6 and expected.count("review") == 12
