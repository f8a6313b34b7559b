"""Per-row errors: rows the destination refuses land in activation.sync_rejects (reason, HTTP status,
attempts), stay out of the snapshot and are retried by the next run; rows with unusable identifiers
are set aside before anything is sent."""

from __future__ import annotations

import pytest

from activations.engine.run import run_sync
from sandbox.faults import REJECTION_MESSAGE, FaultInjector, FaultSettings

from .setups import AUDIENCE, FAST_POLICY, add_people, expected, held, make_sync, sandbox_state

pytestmark = pytest.mark.xdist_group("engine")


def rejects(con, sync_name: str) -> dict[str, tuple]:
    rows = con.execute("""select row_key, kind, reason, http_status, attempts from activation.sync_rejects
                          where sync_name = ?""", [sync_name]).fetchall()
    return {row[0]: row[1:] for row in rows}


def snapshot_keys(con, sync_name: str) -> set[str]:
    return {r[0] for r in con.execute("select row_key from activation.sync_snapshots where sync_name = ?",
                                      [sync_name]).fetchall()}


def test_refused_rows_are_recorded_and_retried_next_run(sandbox, con):
    add_people(con, 30)
    con.execute(f"update {AUDIENCE} set email = 'not-an-email' where customer_id = 'c29'")  # set aside
    settings = FaultSettings(row_reject_rate=0.2, seed=7)
    sandbox.faults("hubspot", row_reject_rate=settings.row_reject_rate, seed=settings.seed)
    refuses = FaultInjector("hubspot", settings).rejects
    refused = {f"c{i}" for i in range(29) if refuses(f"person{i}@example.com")}
    assert 2 <= len(refused) <= 15  # the seed gives a meaningful share
    sync, client = make_sync("hubspot"), sandbox.client("hubspot")

    first = run_sync(con, sync, client, policy=FAST_POLICY)
    # Rows the destination refused and one it could never take: delivered but for those (exit 4, not 1).
    assert (first.status, first.rejected, first.invalid, first.confirmed) == (
        "delivered_except_invalid", len(refused), 1, 29 - len(refused))
    recorded = rejects(con, sync.name)
    assert set(recorded) == refused | {"c29"}
    for key in refused:
        kind, reason, status, attempts = recorded[key]
        assert (kind, attempts) == ("rejected", 1)
        assert REJECTION_MESSAGE in reason and status is not None and 200 <= status < 500
    assert recorded["c29"] == ("invalid", "email: invalid", None, 1)
    assert snapshot_keys(con, sync.name) == {f"c{i}" for i in range(29)} - refused
    contacts = sandbox_state(sandbox.base, "hubspot")["contacts"]
    assert "not-an-email" not in contacts  # never reached the destination
    assert not {f"person{i}@example.com" for i in refused} & set(contacts)

    # The next run plans them again by itself; the destination still refuses them.
    second = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (second.planned, second.rejected, second.invalid) == (len(refused) + 1, len(refused), 1)
    assert {key: row[3] for key, row in rejects(con, sync.name).items()} == dict.fromkeys(refused | {"c29"}, 2)

    # The destination takes them now and the address is fixed: nothing is left rejected.
    sandbox.faults("hubspot", row_reject_rate=0.0)
    con.execute(f"update {AUDIENCE} set email = 'person29@example.com' where customer_id = 'c29'")
    third = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (third.status, third.confirmed, third.rejected, third.invalid) == ("success", len(refused) + 1, 0, 0)
    assert rejects(con, sync.name) == {}
    assert held(sandbox.base, "hubspot") == expected(con, "hubspot")


def test_a_field_the_destination_refuses_keeps_the_row_out_of_the_snapshot(sandbox, con):
    add_people(con, 6)
    # Email is a mapped field for Salesforce, not an identifier: only the platform can refuse it.
    con.execute(f"update {AUDIENCE} set email = 'broken@@example' where customer_id = 'c3'")
    con.execute(f"insert into {AUDIENCE} values (' ', 'blank@example.com', null, 'Blank', 'Id', 0, true)")
    sync, client = make_sync("salesforce"), sandbox.client("salesforce")

    first = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (first.status, first.confirmed, first.rejected, first.invalid) == ("delivered_except_invalid", 5, 1, 1)
    recorded = rejects(con, sync.name)
    kind, reason, status, attempts = recorded["c3"]
    assert (kind, status, attempts) == ("rejected", 200, 1) and "INVALID_EMAIL_ADDRESS" in reason
    assert recorded[" "][0] == "invalid" and "external_id" in recorded[" "][1]
    assert snapshot_keys(con, sync.name) == {"c0", "c1", "c2", "c4", "c5"}
    assert set(held(sandbox.base, "salesforce")) == {"c0", "c1", "c2", "c4", "c5"}

    second = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (second.planned, second.rejected, second.invalid) == (2, 1, 1)
    assert rejects(con, sync.name)["c3"][3] == 2

    con.execute(f"update {AUDIENCE} set email = 'person3@example.com' where customer_id = 'c3'")
    third = run_sync(con, sync, client, policy=FAST_POLICY)
    assert third.rejected == 0 and set(rejects(con, sync.name)) == {" "}
    assert held(sandbox.base, "salesforce")["c3"] == "First3"
