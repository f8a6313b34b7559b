"""Run one sync of aud_test and say on stdout each time the ledger takes confirmations.

The kill -9 test starts this in a subprocess and kills it once some rows are confirmed:
    python -m tests.engine.crash_sync WAREHOUSE SANDBOX_BASE DEST_TYPE [OPTIONS_JSON]
"""

from __future__ import annotations

import json
import sys

import duckdb

from activations.engine import ledger
from activations.engine.run import run_sync

from .setups import FAST_POLICY, make_client, make_sync


def main(warehouse: str, base: str, dest_type: str, options: str = "{}") -> None:
    append = ledger.append

    def announcing_append(con, run_id, sync_name, confirmed, errors, at) -> None:
        append(con, run_id, sync_name, confirmed, errors, at)
        print(f"confirmed {confirmed.height}", flush=True)

    ledger.append = announcing_append
    con = duckdb.connect(warehouse)
    client = make_client(base, dest_type, **json.loads(options))
    print("started", flush=True)
    print(run_sync(con, make_sync(dest_type), client, policy=FAST_POLICY), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
