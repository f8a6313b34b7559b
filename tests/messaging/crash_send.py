"""Run one messaging pass and say on stdout each time outcomes are recorded.

The kill -9 test starts this in a subprocess and kills it mid-send:
    python -m tests.messaging.crash_send WAREHOUSE SMTP_HOST SMTP_PORT
"""

from __future__ import annotations

import sys

import duckdb

from activations.messaging import ledger
from activations.messaging.channels import SmtpChannel
from activations.messaging.send import run_pass
from activations.messaging.templates import Templates

from .test_send import NO_CAPS, NOW, make_trigger


def main(warehouse: str, host: str, port: str) -> None:
    update = ledger.update

    def announcing_update(con, changes, now) -> None:
        update(con, changes, now)
        if "state" in changes.columns:
            print(" ".join(sorted(set(changes["state"].to_list()))), flush=True)

    ledger.update = announcing_update
    con = duckdb.connect(warehouse)
    channel = SmtpChannel(host, int(port), from_email="ciao@emporionove.it", from_name="Emporio Nove", pool_size=2)
    print(run_pass(con, [make_trigger()], {"email": channel}, Templates(), NO_CAPS, NOW, concurrency=2), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
