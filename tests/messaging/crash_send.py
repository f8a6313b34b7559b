"""Run one messaging pass and say on stdout each time outcomes are folded into the ledger.

The kill -9 tests and benchmarks/messaging_crash.py start this in a subprocess and kill it mid-send:
    python -m tests.messaging.crash_send WAREHOUSE smtp HOST PORT
    python -m tests.messaging.crash_send WAREHOUSE sendgrid BASE_URL TOKEN
"""

from __future__ import annotations

import sys

import duckdb

from activations.destinations.base import Secret
from activations.messaging import ledger
from activations.messaging.channels import SendGridMailChannel, SmtpChannel
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates

from .test_send import NO_CAPS, NOW, make_trigger

CONCURRENCY = 2


def channel(kind: str, where: str, detail: str):
    """The channel the pass sends through: the sandbox's SMTP server or its SendGrid."""
    if kind == "smtp":
        return SmtpChannel(where, int(detail), from_email="ciao@emporionove.it", from_name="Emporio Nove",
                           pool_size=CONCURRENCY)
    return SendGridMailChannel(where, Secret(detail), from_email="ciao@emporionove.it", from_name="Emporio Nove",
                               pool_size=CONCURRENCY, activity_lag=0, timeout=10)


def main(warehouse: str, kind: str, where: str, detail: str) -> None:
    update = ledger.update

    def announcing_update(con, changes, now) -> None:
        update(con, changes, now)
        if "state" in changes.columns:
            print(" ".join(sorted(set(changes["state"].to_list()))), flush=True)

    ledger.update = announcing_update
    con = duckdb.connect(warehouse)
    print(run_pass(con, [make_trigger()], {"email": channel(kind, where, detail)}, Templates(), NO_CAPS, NOW,
                   concurrency=CONCURRENCY), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
