"""Run `attiva ARGS` and kill -9 the process at a chosen point of the sync's end:

    python -m tests.cli_killed after-append|after-fold apply PLAN_FILE

`after-append`: once the ledger took the run's confirmations, before the run folded them;
`after-fold`: once the run's end (fold and status) is recorded, before the command returns.
"""

from __future__ import annotations

import os
import signal
import sys

from activations.cli import main
from activations.engine import ledger


def killed(when: str, argv: list[str]) -> None:
    append, fold = ledger.append, ledger.fold

    def append_then_die(*args, **kwargs) -> None:
        append(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    def fold_then_die(con, sync_name, run_id, plan_id=None, **kwargs) -> None:
        fold(con, sync_name, run_id, plan_id, **kwargs)
        if plan_id is not None:  # the end of a run that went through its plan, not the recovery of another
            os.kill(os.getpid(), signal.SIGKILL)

    if when == "after-append":
        ledger.append = append_then_die
    else:
        ledger.fold = fold_then_die
    main(argv)


if __name__ == "__main__":
    killed(sys.argv[1], sys.argv[2:])
