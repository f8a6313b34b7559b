"""Thompson sampling's rewards come from the real measurement views (conftest.py's handcrafted
history): a click matched to a message, an order attributed to one, with the probability logged."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from activations.messaging import allocation
from tests.measurement.conftest import HISTORY, VARIANTS, VARIANTS_SENT_AT

pytestmark = pytest.mark.xdist_group("handcrafted")


def test_rewards_are_read_from_message_outcomes_and_conversions(measured_warehouse):
    path, ids = measured_warehouse
    clicked = ids[len(HISTORY) + 1]  # the second A/B message, variant b
    with duckdb.connect(str(path)) as con:
        con.execute("""insert into raw.email_engagement (engagement_id, email, event_type, occurred_at, campaign,
                       message_id, bounce_type, url)
                       values ('V-click', 'someone@example.it', 'click', ?, 'favourite_on_promotion', ?, null, null)""",
                    [VARIANTS_SENT_AT, clicked])
        con.execute("update activation.message_ledger set variant_probability = 0.5 "
                    "where campaign = 'favourite_on_promotion'")
        after = datetime(2026, 11, 21)
        rows = allocation.outcomes(con, "favourite_on_promotion", 1, "clicked", after).sort("variant", "reward")
        assert rows.rows() == sorted((t, 0.5, int(n == 1)) for n, (_, t) in enumerate(VARIANTS))
        assert allocation.outcomes(con, "favourite_on_promotion", 1, "clicked", VARIANTS_SENT_AT).is_empty()
        # mario's order O1 is attributed to the welcome email: a conversion; no probability was logged there.
        assert allocation.outcomes(con, "welcome", 1, "converted", after).rows() == [("welcome", None, 1)]
        # The shares a Thompson step would plan with on 11-23 (the click has settled): b ahead.
        a, b = allocation.shares(con, "favourite_on_promotion", 1, tuple(sorted({t for _, t in VARIANTS})),
                                 "clicked", datetime(2026, 11, 23))
        assert b > a
