"""Secrets never leave the client: not in logs (at DEBUG), not in errors, not in the warehouse."""

from __future__ import annotations

import logging

import pytest

from activations.engine.run import SyncFailed, run_sync

from .setups import AUDIENCE, FAST_POLICY, TOKENS, add_people, make_sync

pytestmark = pytest.mark.xdist_group("engine")

WRONG = "wr0ng-Secret-Q8nV3cLp6Rt"


@pytest.mark.parametrize("dest_type", ["hubspot", "salesforce", "mailchimp", "sendgrid", "brevo", "meta", "google",
                                       "webhook"])
def test_no_secret_in_logs_errors_or_tables(sandbox, con, table_text, caplog, dest_type):
    caplog.set_level(logging.DEBUG)
    add_people(con, 12)
    con.execute(f"update {AUDIENCE} set email = 'not-an-email' where customer_id = 'c11'")
    sync = make_sync(dest_type)

    # The platform refuses the credential: the run fails and says so, without the credential.
    with pytest.raises(SyncFailed) as caught:
        run_sync(con, sync, sandbox.client(dest_type, token=WRONG), policy=FAST_POLICY)
    failure = caught.value
    assert failure.result.status == "failed" and failure.result.confirmed == 0
    assert "401" in str(failure) or "403" in str(failure) or "auth" in str(failure).lower(), str(failure)

    # The right credential, on a bad day: 5xx and refused rows write reasons down.
    sandbox.faults(dest_type, error_rate=0.3, row_reject_rate=0.3, seed=5)
    result = run_sync(con, sync, sandbox.client(dest_type), policy=FAST_POLICY)
    assert result.ok and result.confirmed > 0 and result.rejected > 0, result
    assert caplog.records  # the HTTP traffic was logged at DEBUG: the search below is not vacuous

    for secret in (WRONG, TOKENS[dest_type]):
        assert secret not in caplog.text
        assert secret not in str(failure) and secret not in repr(failure.result)
        assert secret not in str(result)
        assert secret not in table_text()
