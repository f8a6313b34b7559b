"""Guards: a mirror sync refuses to empty a destination because an audience broke, says why and
how to override, sends nothing; --force (force=True) goes ahead."""

from __future__ import annotations

import pytest

from activations.engine.run import SyncRefused, run_sync

from .setups import AUDIENCE, FAST_POLICY, add_people, expected, held, make_sync, requests_served

pytestmark = pytest.mark.xdist_group("engine")


def refused(con, sandbox, sync, client) -> str:
    """Run `sync` expecting a refusal; checks the destination was not touched; returns the message."""
    holding, served = held(sandbox.base, "hubspot"), requests_served(sandbox.base, "hubspot")
    snapshot = con.execute("select count(*) from activation.sync_snapshots where sync_name = ?",
                           [sync.name]).fetchone()[0]
    with pytest.raises(SyncRefused) as caught:
        run_sync(con, sync, client, policy=FAST_POLICY)
    assert caught.value.result.status == "refused" and caught.value.result.sent == 0
    assert held(sandbox.base, "hubspot") == holding
    assert requests_served(sandbox.base, "hubspot") == served
    assert con.execute("select count(*) from activation.sync_snapshots where sync_name = ?",
                       [sync.name]).fetchone()[0] == snapshot
    status, error = con.execute("select status, error from activation.sync_runs where run_id = ?",
                                [caught.value.result.run_id]).fetchone()
    assert (status, error) == ("refused", str(caught.value))
    return str(caught.value)


@pytest.mark.parametrize("emptied", [False, True], ids=["shrank", "emptied"])
def test_a_mirror_refuses_to_remove_too_much_unless_forced(sandbox, con, emptied):
    add_people(con, 10)
    sync, client = make_sync("hubspot"), sandbox.client("hubspot")
    run_sync(con, sync, client, policy=FAST_POLICY)

    con.execute(f"delete from {AUDIENCE}" + ("" if emptied else " where customer_id in ('c0','c1','c2','c3','c4')"))
    message = refused(con, sandbox, sync, client)
    share = "100%" if emptied else "50%"
    assert f"({share} > max_remove_share 20%)" in message and "--force" in message
    assert "aud_test" in message

    forced = run_sync(con, sync, client, force=True, policy=FAST_POLICY)
    assert forced.status == "success" and forced.plan.removes == (10 if emptied else 5)
    assert held(sandbox.base, "hubspot") == expected(con, "hubspot")


def test_a_mirror_refuses_when_the_audience_shrank(sandbox, con):
    add_people(con, 10)
    sync = make_sync("hubspot", guards={"max_remove_share": 1.0, "max_shrink_share": 0.5})
    client = sandbox.client("hubspot")
    run_sync(con, sync, client, policy=FAST_POLICY)

    con.execute(f"delete from {AUDIENCE} where customer_id not in ('c0', 'c1', 'c2', 'c3')")
    message = refused(con, sandbox, sync, client)
    assert "shrank from 10 to 4 rows (60% > max_shrink_share 50%)" in message and "--force" in message

    assert run_sync(con, sync, client, force=True, policy=FAST_POLICY).status == "success"
    assert held(sandbox.base, "hubspot") == expected(con, "hubspot")
    # The forced run is the new baseline: the same audience runs again without a refusal.
    assert run_sync(con, sync, client, policy=FAST_POLICY).planned == 0


def test_a_small_removal_goes_ahead(sandbox, con):
    add_people(con, 10)
    sync, client = make_sync("hubspot"), sandbox.client("hubspot")
    run_sync(con, sync, client, policy=FAST_POLICY)
    con.execute(f"update {AUDIENCE} set consent = false where customer_id in ('c0', 'c1')")  # 20%: at the limit
    assert run_sync(con, sync, client, policy=FAST_POLICY).plan.removes == 2
    assert held(sandbox.base, "hubspot") == expected(con, "hubspot")
