"""The sandbox: every destination's real API contract served on loopback.

One Starlette app; each destination is mounted under its type name, so a client's
base URL is ``http://127.0.0.1:<port>/<type>`` followed by the vendor's real path.
``/_sandbox/...`` is the control surface (state, reset, fault injection, received mail).
A local SMTP server (smtp.py) stores every message it accepts.

The names below load their module on first use: ``attiva`` imports the sandbox's flags
(command.py) for its parser, and must not pay for the server on every command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.config import DESTINATION_TYPES, SandboxConfig
    from sandbox.server import SandboxURL, create_app, run, running_sandbox
    from sandbox.smtp import running_smtp

_HOMES = {
    "DESTINATION_TYPES": "config",
    "SandboxConfig": "config",
    "SandboxURL": "server",
    "create_app": "server",
    "run": "server",
    "running_sandbox": "server",
    "running_smtp": "smtp",
}

__all__ = ["DESTINATION_TYPES", "SandboxConfig", "SandboxURL", "create_app", "run", "running_sandbox", "running_smtp"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
