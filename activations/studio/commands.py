"""The terminal's own `attiva` commands, run by the console (a sync's retry, an erasure): the same code
path as a terminal, in a process of its own, with the environment the command needs (the destinations'
tokens) but not the console's own secret and password."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def attiva(command: str, *args: str, warehouse: Path) -> list[str]:
    """The argv of `attiva COMMAND ARGS --warehouse WAREHOUSE` with this interpreter."""
    return [sys.executable, "-m", "activations.cli", command, *args, "--warehouse", str(warehouse)]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment less ATTIVA_STUDIO_*, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ATTIVA_STUDIO_")}, **extra}
