"""Erasing a customer from the console: the terminal's `attiva forget CUSTOMER_ID`, run as a subprocess.

Running the command itself, not its functions, keeps one code path for erasure: the warehouse's
write lock is taken and waited for by the same code as in a terminal, and the web process holds no
write connection while destinations are asked to delete the person (which may take a while). Who
asked and when is kept in `activation.studio_actions`, with the erasure request's id (which leads
to `activation.erasure_requests` and its destinations) and the command's exit code: never the
person's email, phone or customer id.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from activations import warehouse
from activations.erasure import sha256
from activations.studio import audit, commands

TIMEOUT = 120.0  # seconds the console waits for the command before giving up on it (and killing it)
WAIT = 20.0  # seconds the command waits for a writer (a build, a sync) to let go of the warehouse
REQUEST = re.compile(r"erasure request (\w+):")
OUTCOMES = {  # `attiva forget`'s exit codes, in the console's words
    0: "erased, and every destination confirmed the deletion",
    1: "nothing erased: no customer has that id, or the warehouse stayed busy",
    2: "nothing erased: no warehouse there, or the destinations file could not be read",
    3: "erased; a destination has not confirmed the deletion yet: it is asked again at every sync run "
       "(`attiva forget --status`)",
}


@dataclass(frozen=True)
class Erasure:
    exit_code: int | None  # None: the command did not finish in time
    output: str
    request_id: str | None

    @property
    def outcome(self) -> str:
        if self.exit_code is None:
            return f"the command did not finish within {TIMEOUT:.0f} s and was stopped: see `attiva forget --status`"
        if self.exit_code == 1 and "still in use by" in self.output:
            return "nothing erased: the warehouse is in use by another process; try again when it finishes"
        return OUTCOMES.get(self.exit_code, f"exit code {self.exit_code}")


def run_forget(warehouse_path: Path, customer_id: str, destinations_path: Path | None = None,
               timeout: float = TIMEOUT) -> Erasure:
    """`attiva forget CUSTOMER_ID --warehouse PATH` in a subprocess, its output (stdout then stderr)."""
    if not customer_id or customer_id.startswith("-") or "@" in customer_id:
        raise ValueError("a customer id, not an option or an address")
    env = commands.environment(**{warehouse.WAIT_VARIABLE: str(WAIT)})
    if destinations_path is not None:
        env["ATTIVA_DESTINATIONS"] = str(destinations_path)
    command = commands.attiva("forget", customer_id, warehouse=warehouse_path)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:  # run() has killed it
        return Erasure(None, _text(exc.stdout) + _text(exc.stderr), None)
    output = done.stdout + done.stderr
    found = REQUEST.search(output)
    return Erasure(done.returncode, output, found[1] if found else None)


def record_request(con, actor: str) -> str:
    """Who asked for an erasure, and when, before it runs (outcome `running`); the action's id."""
    return audit.record(con, "erase", None, actor)


def record_outcome(con, action_id: str, erasure: Erasure) -> None:
    audit.settle(con, action_id, erasure.outcome, exit_code=erasure.exit_code, request_id=erasure.request_id)


def erased_at(con, customer_id: str) -> datetime | None:
    """When `attiva forget` was last asked to erase this customer id (its request keeps only a hash of it)."""
    if not warehouse.has_table(con, "activation", "erasure_requests"):
        return None
    return con.execute("select max(requested_at) from activation.erasure_requests where subject_sha256 = ? "
                       "and customers > 0", [sha256(customer_id)]).fetchone()[0]


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
