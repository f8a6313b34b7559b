"""Each destination's happy path through run_sync, over real HTTP to the sandbox: the destination
ends equal to the eligible audience, a rerun sends nothing, mirror removals and field updates arrive."""

from __future__ import annotations

from dataclasses import replace

import pytest

from activations.engine.run import run_sync

from .setups import (
    AUDIENCE,
    FAST_POLICY,
    FIRST_NAME_FIELD,
    add_people,
    eligible,
    expected,
    held,
    make_sync,
    requests_served,
    sandbox_state,
)

pytestmark = pytest.mark.xdist_group("engine")

# The sandbox's webhook receiver stores every posted row, whatever the batch's "operation": a mirror
# removal reaches it but the row stays (sandbox/webhook.py `receive`).
DESTINATION_TYPES = ("hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook",
                     "file_export")


def requests_or_files(sandbox, dest_type: str) -> int:
    """What the destination has been sent so far: requests served, or files written."""
    if dest_type == "file_export":
        return len(list(sandbox.export_folder.iterdir())) if sandbox.export_folder.exists() else 0
    return requests_served(sandbox.base, dest_type)


@pytest.mark.parametrize("dest_type", DESTINATION_TYPES)
def test_the_destination_follows_the_audience(sandbox, con, dest_type):
    add_people(con, 12)
    con.execute(f"update {AUDIENCE} set consent = false where customer_id = 'c11'")  # never sent
    con.execute(f"insert into {AUDIENCE} values (null, 'nokey@example.com', null, 'No', 'Key', 0, true)")
    sync, client = make_sync(dest_type), sandbox.client(dest_type)

    first = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (first.status, first.confirmed, first.rejected, first.invalid) == ("success", 11, 0, 0), first
    assert held(sandbox.base, dest_type, sandbox.export_folder) == expected(con, dest_type)
    snapshot = {r[0] for r in con.execute(
        "select row_key from activation.sync_snapshots where sync_name = ?", [sync.name]).fetchall()}
    assert snapshot == set(eligible(con))

    # Nothing changed: nothing is sent, not one request.
    before = requests_or_files(sandbox, dest_type)
    second = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (second.status, second.planned, second.sent) == ("success", 0, 0)
    assert requests_or_files(sandbox, dest_type) == before

    # A mapped field changes; a person revokes consent; another leaves the audience.
    con.execute(f"update {AUDIENCE} set first_name = 'Renamed' where customer_id = 'c0'")
    con.execute(f"update {AUDIENCE} set consent = false where customer_id = 'c1'")
    con.execute(f"delete from {AUDIENCE} where customer_id = 'c2'")
    third = run_sync(con, sync, client, policy=FAST_POLICY)
    assert third.status == "success", third
    holding = held(sandbox.base, dest_type, sandbox.export_folder)
    if sync.mode == "mirror":
        assert third.plan.removes == 2
        assert holding == expected(con, dest_type)
    else:  # upsert: nothing is ever taken out of the destination
        assert set(holding) >= set(expected(con, dest_type))
    if FIRST_NAME_FIELD[dest_type]:
        identity = next(k for k, v in expected(con, dest_type).items() if v == "Renamed")
        assert holding[identity] == "Renamed"


@pytest.mark.parametrize("dest_type", ["hubspot", "meta", "google", "mailchimp", "sendgrid", "brevo"])
def test_a_changed_email_leaves_no_trace_of_the_old_one(sandbox, con, dest_type):
    add_people(con, 6)
    sync, client = make_sync(dest_type), sandbox.client(dest_type)
    run_sync(con, sync, client, policy=FAST_POLICY)

    con.execute(f"update {AUDIENCE} set email = 'new.address@example.com' where customer_id = 'c0'")
    assert run_sync(con, sync, client, policy=FAST_POLICY).status == "success"
    assert held(sandbox.base, dest_type) == expected(con, dest_type)


def test_people_sharing_the_key_are_sent_once_even_across_read_chunks(sandbox, con, monkeypatch):
    """A sync keyed on email: customers sharing an address (same name, same fields) are one row at the
    destination, sent once, however the rows fall into the chunks the engine reads."""
    from activations.engine import run as engine_run

    monkeypatch.setattr(engine_run, "CHUNK_ROWS", 3)  # every pair of twins may straddle two chunks
    add_people(con, 12)
    con.execute(f"""insert into {AUDIENCE}
                    select 'twin' || customer_id, email, phone, first_name, last_name, score, consent
                    from {AUDIENCE}""")
    sync = make_sync("webhook", key="email")
    result = run_sync(con, sync, sandbox.client("webhook"), policy=FAST_POLICY)
    assert (result.status, result.planned, result.sent, result.confirmed) == ("success", 12, 12, 12)
    endpoint = sandbox_state(sandbox.base, "webhook")["endpoints"]["/hooks/crm"]
    assert (endpoint["received"], len(endpoint["rows"])) == (12, 12)


def test_batches_are_full_however_the_rows_are_read(sandbox, con, monkeypatch):
    """Rows come out of the warehouse in chunks of any size (a parallel query hands them over in
    pieces): requests still carry the destination's full batch, and only the last is flagged last."""
    from activations.engine import run as engine_run

    monkeypatch.setattr(engine_run, "CHUNK_ROWS", 7)
    add_people(con, 40)
    client = sandbox.client("meta")
    monkeypatch.setattr(client, "capabilities", replace(client.capabilities, batch_size=10))
    sent = []
    send = client.send
    monkeypatch.setattr(client, "send", lambda op, batch, part=None: sent.append((batch.height, part.is_last)) or send(
        op, batch, part))
    result = run_sync(con, make_sync("meta", mode="upsert"), client, policy=FAST_POLICY)
    assert (result.status, result.confirmed) == ("success", 40)
    assert sent == [(10, False), (10, False), (10, False), (10, True)]
    assert requests_served(sandbox.base, "meta") == 4
