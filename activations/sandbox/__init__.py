"""The sandbox: every destination's real API contract served on loopback.

One Starlette app; each destination is mounted under its type name, so a client's
base URL is ``http://127.0.0.1:<port>/<type>`` followed by the vendor's real path.
``/_sandbox/...`` is the control surface (state, reset, fault injection, received mail).
A local SMTP server (smtp.py) stores every message it accepts.
"""

from __future__ import annotations

from activations.sandbox.config import DESTINATION_TYPES, SandboxConfig
from activations.sandbox.server import SandboxURL, create_app, run, running_sandbox
from activations.sandbox.smtp import running_smtp

__all__ = ["DESTINATION_TYPES", "SandboxConfig", "SandboxURL", "create_app", "run", "running_sandbox", "running_smtp"]
