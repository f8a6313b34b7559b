"""A copy of the handcrafted warehouse with a message history, engagement and sync runs on top.

The measurement models are views, so rows written into the ledger, the raw engagement table
and the run log show up in them at once, without rebuilding dbt.

History (as_of 2026-11-20 12:00 UTC; orders are the handcrafted ones):
- mario: cart sent 11-15, welcome sent 11-17; orders O1 11-18 (25.80) -> welcome (his last message).
  Opened and clicked the cart email (matched by message id).
- giulia: cart sent 11-09; order O6 11-10 (15.00) -> cart. Unsubscribed (matched by address + campaign).
- franco: cart sent 11-18; O14 11-19 was cancelled -> nothing. Hard bounce (address + campaign).
- rita: held out of cart (due 11-19 08:00); O13 11-20 05:00 (7.50) -> cart, holdout; O11 11-01 is before.
- davide: win_back sent 11-01; O15 11-12 is 11 days later -> nothing.
- An A/B test (VARIANTS): favourite_on_promotion sent 11-20 09:00 to mario, giulia, franco and davide, two
  templates, after every order; delivered to all, opened by two (matched by message id).
- Sync runs: Meta reports what it received and found invalid; Google reports a match rate range.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from activations.engine.state import ensure_state
from activations.messaging.ledger import ensure_ledger, message_id

# (who: order id whose customer it is, campaign, step, state, sent or due at)
HISTORY = (
    ("O1", "abandoned_cart", 1, "sent", datetime(2026, 11, 15, 10)),
    ("O1", "welcome", 1, "sent", datetime(2026, 11, 17, 10)),
    ("O6", "abandoned_cart", 1, "sent", datetime(2026, 11, 9, 10)),
    ("O14", "abandoned_cart", 1, "sent", datetime(2026, 11, 18, 10)),
    ("O13", "abandoned_cart", 1, "held_out", datetime(2026, 11, 19, 8)),
    ("O15", "win_back", 1, "sent", datetime(2026, 11, 1, 10)),
)
# An A/B test: (who, template), sent 2026-11-20 09:00, after every order of theirs.
VARIANTS = (("O1", "favourite_on_promotion"), ("O6", "favourite_on_promotion_b"), ("O14", "favourite_on_promotion"),
            ("O15", "favourite_on_promotion_b"))
VARIANTS_SENT_AT = datetime(2026, 11, 20, 9)
# (engagement id, email, event, at, campaign, message id of HISTORY row (index) or None, bounce type)
ENGAGEMENT = (
    ("F1", "mario.rossi@gmail.com", "delivered", datetime(2026, 11, 15, 10, 1), "abandoned_cart", 0, None),
    ("F2", "mario.rossi@gmail.com", "open", datetime(2026, 11, 15, 12), "abandoned_cart", 0, None),
    ("F3", "mario.rossi@gmail.com", "click", datetime(2026, 11, 15, 12, 1), "abandoned_cart", 0, None),
    ("F4", "giulia.b@example.it", "unsubscribe", datetime(2026, 11, 9, 18), "abandoned_cart", None, None),
    ("F5", "Franco.Gallo@Example.it ", "bounce", datetime(2026, 11, 18, 10, 1), "abandoned_cart", None, "hard"),
)
SYNC_RUNS = (  # sync, destination, day, audience, sent, confirmed, rejected, invalid, and what the destination
    # reported: received, invalid, match rate low, high
    ("champions_to_meta", "meta", datetime(2026, 11, 18, 6), 120, 120, 118, 1, 1, 119, 1, None, None),
    ("champions_to_meta", "meta", datetime(2026, 11, 19, 6), 126, 8, 8, 0, 0, 8, 0, None, None),
    ("champions_to_meta", "meta", datetime(2026, 11, 20, 6), 131, 6, 5, 1, 0, 6, 1, None, None),
    ("newsletter_to_sendgrid", "sendgrid", datetime(2026, 11, 19, 6), 4200, 4200, 4150, 30, 20, None, None, None,
     None),
    ("newsletter_to_sendgrid", "sendgrid", datetime(2026, 11, 20, 6), 4310, 150, 149, 1, 0, None, None, None, None),
    ("seeds_to_google", "google", datetime(2026, 11, 20, 6), 900, 900, 895, 0, 5, None, None, 0.61, 0.7),
)


def customer_of(con, order_id: str) -> str:
    return con.execute("select customer_id from marts.orders where order_id = ?", [order_id]).fetchone()[0]


def write_history(con) -> list[str]:
    """The ledger rows, engagement and sync runs above; returns the ledger's message ids in HISTORY order."""
    ensure_ledger(con)
    ensure_state(con)
    ids = []
    for n, (order, campaign, step, state, at) in enumerate(HISTORY):
        key = f"history-{n}"
        mid = message_id(campaign, key, step)
        ids.append(mid)
        con.execute("""
            insert into activation.message_ledger (campaign, trigger_key, step, customer_id, channel, template, state,
                reason, priority, marketing, occurred_at, due_at, expires_at, message_id, attempts, planned_at,
                sent_at, updated_at)
            values (?, ?, ?, ?, 'email', ?, ?, null, 50, true, ?, ?, ?, ?, 1, ?, ?, ?)""",
                    [campaign, key, step, customer_of(con, order), campaign, state, at, at, at, mid, at,
                     at if state == "sent" else None, at])
    for n, (order, template) in enumerate(VARIANTS):
        key = f"variant-{n}"
        mid = message_id("favourite_on_promotion", key, 1)
        ids.append(mid)
        at = VARIANTS_SENT_AT
        con.execute("""
            insert into activation.message_ledger (campaign, trigger_key, step, customer_id, channel, template, state,
                reason, priority, marketing, occurred_at, due_at, expires_at, message_id, attempts, planned_at,
                sent_at, updated_at)
            values ('favourite_on_promotion', ?, 1, ?, 'email', ?, 'sent', null, 55, true, ?, ?, ?, ?, 1, ?, ?, ?)""",
                    [key, customer_of(con, order), template, at, at, at, mid, at, at, at])
        events = ["delivered", "open"] if n < 2 else ["delivered"]  # one open per variant
        for event in events:
            con.execute("""
                insert into raw.email_engagement (engagement_id, email, event_type, occurred_at, campaign, message_id,
                                                  bounce_type, url)
                values (?, 'someone@example.it', ?, ?, 'favourite_on_promotion', ?, null, null)""",
                        [f"V{n}-{event}", event, at, mid])
    for engagement_id, email, event, at, campaign, row, bounce in ENGAGEMENT:
        con.execute("""
            insert into raw.email_engagement (engagement_id, email, event_type, occurred_at, campaign, message_id,
                                              bounce_type, url)
            values (?, ?, ?, ?, ?, ?, ?, null)""",
                    [engagement_id, email, event, at, campaign, None if row is None else f"<{ids[row]}>", bounce])
    for n, (sync, destination, at, audience, sent, confirmed, rejected, invalid, received, reported_invalid, low,
            high) in enumerate(SYNC_RUNS):
        con.execute("""
            insert into activation.sync_runs (run_id, sync_name, destination, mode, status, started_at, finished_at,
                duration_seconds, audience_rows, planned, sent, confirmed, rejected, invalid, reported_received,
                reported_invalid, match_rate_low, match_rate_high)
            values (?, ?, ?, 'mirror', 'succeeded', ?, ?, 2.5, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [f"run-{n}", sync, destination, at, at, audience, sent + invalid, sent, confirmed, rejected,
                     invalid, received, reported_invalid, low, high])
    return ids


def copy_warehouse(source: Path, target_dir: Path) -> Path:
    target = target_dir / "warehouse.duckdb"
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    return target


@pytest.fixture
def measured_warehouse(handcrafted_warehouse: Path, tmp_path: Path):
    """(path, message ids): the handcrafted warehouse copied, with the history above written into it."""
    path = copy_warehouse(handcrafted_warehouse, tmp_path)
    con = duckdb.connect(str(path))
    try:
        ids = write_history(con)
    finally:
        con.close()
    return path, ids
