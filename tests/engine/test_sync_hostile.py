"""Runs against a destination that pushes back: rate limits, 429 storms, 5xx, timeouts and row
rejections. Whatever it does, no valid row is lost and every refusal is on record."""

from __future__ import annotations

import pytest

from activations.engine.deliver import RetryPolicy
from activations.engine.run import run_sync
from sandbox.faults import REJECTION_MESSAGE, FaultInjector, FaultSettings

from .setups import AUDIENCE, FAST_POLICY, add_people, eligible, expected, held, make_sync, sandbox_state

pytestmark = pytest.mark.xdist_group("engine")


def responses(sandbox, dest_type: str) -> dict[str, int]:
    return sandbox_state(sandbox.base, dest_type)["requests"]["responses"]


def snapshot_keys(con, sync_name: str) -> set[str]:
    return {r[0] for r in con.execute("select row_key from activation.sync_snapshots where sync_name = ?",
                                      [sync_name]).fetchall()}


def test_a_run_over_a_tight_rate_limit_loses_no_row(sandbox, con):
    # Brevo's own window, tightened: the client's pace (10 requests/s) overruns it.
    sandbox.faults("brevo", rate_limits={"requests": 4, "window_seconds": 1.0})
    add_people(con, 900)
    sync, client = make_sync("brevo"), sandbox.client("brevo")

    result = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (result.status, result.confirmed, result.rejected) == ("success", 900, 0), result
    assert responses(sandbox, "brevo").get("429", 0) > 0  # the limit did bite
    assert held(sandbox.base, "brevo") == expected(con, "brevo")
    assert snapshot_keys(con, sync.name) == set(eligible(con))


def test_a_429_storm_loses_no_row(sandbox, con):
    sandbox.faults("mailchimp", rate_limit_rate=0.4, seed=3)
    add_people(con, 400)
    con.execute(f"update {AUDIENCE} set consent = false where customer_id in ('c1', 'c2')")
    sync, client = make_sync("mailchimp"), sandbox.client("mailchimp", batch_size=50)

    result = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (result.status, result.confirmed, result.rejected) == ("success", 398, 0), result
    assert responses(sandbox, "mailchimp").get("429", 0) > 0
    assert held(sandbox.base, "mailchimp") == expected(con, "mailchimp")
    assert snapshot_keys(con, sync.name) == set(eligible(con))


def test_the_hostile_run_delivers_every_valid_row_and_records_every_rejection(sandbox, con):
    settings = FaultSettings(rate_limit_rate=0.10, error_rate=0.05, timeout_rate=0.02, timeout_seconds=1.0,
                             row_reject_rate=0.01, seed=11)
    sandbox.faults("webhook", **{k: v for k, v in settings.as_dict().items()})
    add_people(con, 5000)
    refused = {key for key in eligible(con) if FaultInjector("webhook", settings).rejects(key)}
    assert 20 <= len(refused) <= 90
    sync = make_sync("webhook", mode="upsert")
    client = sandbox.client("webhook", max_rows=100, read_timeout=0.3)

    result = run_sync(con, sync, client, policy=FAST_POLICY)
    assert (result.status, result.confirmed, result.rejected) == (
        "delivered_except_invalid", 5000 - len(refused), len(refused))
    served = responses(sandbox, "webhook")
    assert served.get("429", 0) and served.get("503", 0)  # the faults did happen
    draws = FaultInjector("webhook", settings)  # the sandbox's seeded stream, replayed
    assert [draws.draw() for _ in range(sum(served.values()))].count("timeout") >= 1
    holding = held(sandbox.base, "webhook")
    assert set(holding) == set(eligible(con)) - refused  # every valid row arrived
    assert snapshot_keys(con, sync.name) <= set(holding)  # nothing marked sent that is not there
    assert snapshot_keys(con, sync.name) == set(holding)
    recorded = con.execute("""select row_key, kind, reason, http_status, attempts from activation.sync_rejects
                              where sync_name = ?""", [sync.name]).fetchall()
    assert {r[0] for r in recorded} == refused
    assert all(kind == "rejected" and REJECTION_MESSAGE in reason and status == 200 and attempts == 1
               for _, kind, reason, status, attempts in recorded), recorded[:3]


def test_rate_limit_answers_are_waited_out_without_using_up_the_tries(sandbox, con):
    sandbox.faults("webhook", rate_limit_rate=0.9, seed=5)  # nine requests in ten answered 429
    add_people(con, 300)
    sync, client = make_sync("webhook", mode="upsert"), sandbox.client("webhook", max_rows=100)
    policy = RetryPolicy(max_tries=2, base_delay=0.005, max_delay=0.02, longest_wait=60)

    result = run_sync(con, sync, client, policy=policy)
    assert (result.status, result.confirmed, result.rejected) == ("success", 300, 0), result
    assert responses(sandbox, "webhook").get("429", 0) >= 3 * 2  # far more 429s than the tries allowed


def test_server_errors_do_use_up_the_tries_and_the_rows_are_recorded_as_refused(sandbox, con):
    sandbox.faults("webhook", error_rate=1.0, seed=5)
    add_people(con, 20)
    sync, client = make_sync("webhook", mode="upsert"), sandbox.client("webhook")
    policy = RetryPolicy(max_tries=3, base_delay=0.005, max_delay=0.02)

    result = run_sync(con, sync, client, policy=policy)
    assert (result.status, result.confirmed, result.rejected) == ("partial", 0, 20), result
    reasons = {r[0] for r in con.execute("select reason from activation.sync_rejects where sync_name = ?",
                                         [sync.name]).fetchall()}
    assert len(reasons) == 1 and reasons.pop().startswith("gave up after 3 tries")
    # Not the destination's verdict: kept apart from rows it refused, and the run exits 1, not 4.
    assert con.execute("select distinct kind from activation.sync_rejects where sync_name = ?",
                       [sync.name]).fetchall() == [("undelivered",)]


def test_a_receiver_that_does_not_dedupe_never_gets_a_batch_twice_in_a_run(sandbox, con):
    """A webhook declared `idempotent: false`: a 5xx may come after the receiver wrote the batch, so the
    engine does not resend it within the run (a 429 is a refusal and is still waited out)."""
    sandbox.faults("webhook", error_rate=1.0, seed=5)
    add_people(con, 20)
    sync, client = make_sync("webhook", mode="upsert"), sandbox.client("webhook", idempotent=False)
    policy = RetryPolicy(max_tries=3, base_delay=0.005, max_delay=0.02)

    result = run_sync(con, sync, client, policy=policy)
    assert (result.status, result.confirmed, result.rejected) == ("partial", 0, 20), result
    assert sum(responses(sandbox, "webhook").values()) == 1  # one batch, one request: no resend
    [(kind, reason)] = con.execute("select distinct kind, reason from activation.sync_rejects where sync_name = ?",
                                   [sync.name]).fetchall()
    assert kind == "undelivered" and reason.startswith("not resent within the run") and "not idempotent" in reason
    sandbox.faults("webhook", error_rate=0.0)
    assert run_sync(con, sync, client, policy=policy).confirmed == 20  # the next run sends them


def test_a_destination_that_keeps_rate_limiting_stops_the_sync_and_refuses_no_row(sandbox, con):
    sandbox.faults("webhook", rate_limit_rate=1.0, seed=5)
    add_people(con, 20)
    sync, client = make_sync("webhook", mode="upsert"), sandbox.client("webhook")
    policy = RetryPolicy(max_tries=3, base_delay=0.05, max_delay=0.1, longest_wait=0.5)

    result = run_sync(con, sync, client, policy=policy)
    assert (result.status, result.confirmed, result.rejected) == ("stopped", 0, 0), result
    assert "asks to wait" in result.error
    assert not snapshot_keys(con, sync.name)  # nothing confirmed, nothing refused: the next run sends them
    sandbox.faults("webhook", rate_limit_rate=0.0)
    assert run_sync(con, sync, client, policy=policy).confirmed == 20


def test_hubspot_retries_a_failed_list_membership_alone_and_the_run_reports_what_it_resent(sandbox, con):
    # 502s fall on upserts and on list memberships alike; a failed membership must not write the
    # contacts again (each write spends the portal's quota), and the run says how many rows went twice.
    # Batches go out concurrently, so which request draws a fault varies from run to run: 20
    # batches at 35 % make "no upsert failed" (or no membership) a 1-in-5,000 event, and 12
    # tries make a batch failing every one of them rarer still.
    sandbox.faults("hubspot", error_rate=0.35, seed=4)
    add_people(con, 300)
    sync, client = make_sync("hubspot"), sandbox.client("hubspot", batch_size=15)
    calls: list[tuple[str, int]] = []
    request = client.http.request

    def watched(method, path, **kwargs):
        response = request(method, path, **kwargs)
        calls.append((path.rsplit("/", 1)[-1], response.status_code))
        return response

    client.http.request = watched
    reports = []
    policy = RetryPolicy(max_tries=12, base_delay=0.02, max_delay=0.3)
    result = run_sync(con, sync, client, policy=policy, on_progress=reports.append)
    assert (result.status, result.confirmed, result.rejected) == ("success", 300, 0), result
    failed_joins = calls.count(("add-and-remove", 502))
    failed_upserts = calls.count(("upsert", 502))
    assert failed_joins and failed_upserts  # both steps did fail
    assert calls.count(("upsert", 200)) == 20  # one accepted upsert per batch: none written twice
    assert result.resent == 15 * (failed_joins + failed_upserts)
    assert "re-sent" in str(result)
    assert con.execute("select resent from activation.sync_runs where run_id = ?", [result.run_id]).fetchone() == (
        result.resent,)
    assert (reports[-1].done, reports[-1].total, reports[-1].resent) == (300, 300, result.resent)
    assert reports[-1].rows_per_second() > 0
    assert held(sandbox.base, "hubspot") == expected(con, "hubspot")
