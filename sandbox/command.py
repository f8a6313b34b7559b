"""``attiva sandbox`` / ``python -m sandbox``: the flags and turning them into a server.

Kept apart from server.py, and importing nothing heavy, so ``attiva`` builds its parser without
loading the server (Starlette, uvicorn, aiosmtpd: about 0.14 s of every command's start-up).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from activations import settings
from sandbox.faults import FAULT_FIELDS


def register(sub: argparse._SubParsersAction) -> None:
    """`attiva sandbox`, through the `attiva.commands` entry point (pyproject.toml)."""
    box = sub.add_parser("sandbox", help="serve every destination's API on 127.0.0.1 (no account needed)")
    add_arguments(box)
    box.set_defaults(handler=run_from_args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``attiva sandbox`` flags; :func:`run_from_args` turns them into a :func:`run` call."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=settings.sandbox_port(),
                        help=f"port (default ATTIVA_SANDBOX_PORT or {settings.SANDBOX_PORT})")
    parser.add_argument(
        "--state", type=Path, default=None, help="state folder (default ATTIVA_SANDBOX_STATE or data/sandbox)"
    )
    parser.add_argument(
        "--fault-destination", default="*", help="destination the fault flags apply to (default '*': all)"
    )
    parser.add_argument("--error-rate", type=float, help="share of requests answered with the vendor's 5xx")
    parser.add_argument("--rate-limit-rate", type=float, help="share answered with the platform's rate-limit signal")
    parser.add_argument("--timeout-rate", type=float, help="share whose answer is held for --timeout-seconds")
    parser.add_argument("--timeout-seconds", type=float, help="how long a held answer waits (default 10)")
    parser.add_argument("--latency-ms", type=float, help="latency added to every request")
    parser.add_argument("--row-reject-rate", type=float, help="share of rows rejected in the vendor's per-row shape")
    parser.add_argument("--seed", type=int, help="fault seed (default 1)")
    parser.add_argument("--faults", type=json.loads, help="JSON fault spec(s), as POST /_sandbox/faults takes")
    parser.add_argument("--rate-limits", type=json.loads, help='JSON overrides, e.g. {"hubspot": {"requests": 10}}')
    parser.add_argument("--sendgrid-import-seconds", type=float, help="how long SendGrid import jobs stay pending")
    parser.add_argument("--webhook-unsigned", action="store_true",
                        help="let the webhook accept posts without a signature (tools that cannot sign)")
    parser.add_argument("--smtp-port", type=int, default=settings.smtp_port(),
                        help=f"SMTP port (default ATTIVA_SMTP_PORT or {settings.SMTP_PORT}; 0: no mail server)")
    parser.add_argument("--smtp-tls-cert", type=Path, help="certificate (PEM) for STARTTLS; with --smtp-tls-key")
    parser.add_argument("--smtp-tls-key", type=Path, help="private key (PEM) for STARTTLS")
    parser.add_argument("--smtp-require-starttls", action="store_true", help="refuse mail before STARTTLS")
    parser.add_argument("--smtp-username", help="require AUTH with this user; password from ATTIVA_SANDBOX_SMTP_PASSWORD")
    parser.add_argument("--smtp-transient-rate", type=float, help="share of RCPT answered 451")
    parser.add_argument("--smtp-permanent-rate", type=float, help="share of addresses answered 550")
    parser.add_argument("--smtp-latency-ms", type=float, help="latency before each DATA reply")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")


def run_from_args(args: argparse.Namespace) -> int:
    """Start :func:`run` from the flags of :func:`add_arguments`; returns an exit status."""
    specs: list[dict[str, Any]] = []
    if args.faults:
        specs += [args.faults] if isinstance(args.faults, dict) else list(args.faults)
    flags = {
        name: getattr(args, name)
        for name in FAULT_FIELDS
        if getattr(args, name, None) is not None
    }
    if flags:
        specs.append({"destination": args.fault_destination, **flags})
    options: dict[str, Any] = {}
    if args.sendgrid_import_seconds is not None:
        options["sendgrid_import_seconds"] = args.sendgrid_import_seconds
    if getattr(args, "webhook_unsigned", False):
        options["webhook_require_signature"] = False
    from sandbox.server import run  # the server's modules load only when it starts

    run(
        host=args.host,
        port=args.port,
        state_dir=args.state,
        log_level=args.log_level,
        faults=specs or None,
        rate_limits=args.rate_limits,
        smtp_port=getattr(args, "smtp_port", None) or None,
        smtp=smtp_options(args, os.environ),
        **options,
    )
    return 0


def smtp_options(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """The mail server options from the ``--smtp-*`` flags (the password from the environment)."""
    options: dict[str, Any] = {}
    for flag, option in (
        ("smtp_tls_cert", "tls_cert"),
        ("smtp_tls_key", "tls_key"),
        ("smtp_transient_rate", "transient_rate"),
        ("smtp_permanent_rate", "permanent_rate"),
        ("smtp_latency_ms", "latency_ms"),
    ):
        if getattr(args, flag, None) is not None:
            options[option] = getattr(args, flag)
    if getattr(args, "smtp_require_starttls", False):
        options["require_starttls"] = True
    if username := getattr(args, "smtp_username", None):
        password = env.get("ATTIVA_SANDBOX_SMTP_PASSWORD")
        if not password:
            raise SystemExit("--smtp-username needs ATTIVA_SANDBOX_SMTP_PASSWORD in the environment")
        options["username"], options["password"] = username, password
    return options
