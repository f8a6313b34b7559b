"""A sandbox for the destination clients' integration tests: one server per test session (per xdist worker).

Each test starts from empty sandbox state and no faults. The sandbox runs with
distinctive secrets so tests can assert that no error message ever carries one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from activations.destinations.base import Destination
from activations.destinations.config import build_client, env_prefix

from .setups import destination_config

SANDBOX_TYPES = ("hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook",
                 "meta_conversions", "google_conversions", "meta_catalog", "google_merchant")
TOKENS = {t: f"tok-{t}-7Qx9Zr4Lm2Pw8Kd" for t in SANDBOX_TYPES}


def sandbox_available() -> bool:
    return importlib.util.find_spec("sandbox") is not None and (
        importlib.util.find_spec("sandbox.server") is not None
    )


@pytest.fixture(scope="session")
def sandbox_base(tmp_path_factory) -> Iterator[str]:
    if not sandbox_available():
        pytest.skip("sandbox.server is not there yet")
    from sandbox.server import running_sandbox

    state_dir = tmp_path_factory.mktemp("sandbox-state")
    with running_sandbox(state_dir, tokens=TOKENS, sendgrid_import_seconds=0.05) as base:
        yield base


class Sandbox:
    """The control surface of the running sandbox, and clients pointed at it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.clients: list[Destination] = []

    def client(self, dest_type: str, name: str | None = None, token: str | None = None, **options: Any) -> Destination:
        name = name or f"test_{dest_type}"
        prefix = env_prefix(name)
        env = {f"{prefix}_URL": f"{self.base}/{dest_type}", f"{prefix}_TOKEN": token or TOKENS[dest_type]}
        client = build_client(destination_config(name, dest_type, options, env))
        self.clients.append(client)
        return client

    def state(self, dest_type: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.base}/_sandbox/state/{dest_type}", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def faults(self, dest_type: str, **spec: Any) -> None:
        answer = self.http.post(f"{self.base}/_sandbox/faults", json={"destination": dest_type, **spec}, timeout=10)
        assert answer.status_code == 200, answer.text

    def reset(self) -> None:
        self.http.delete(f"{self.base}/_sandbox/faults", timeout=10).raise_for_status()
        self.http.post(f"{self.base}/_sandbox/reset", json={}, timeout=10).raise_for_status()

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.http.close()


@pytest.fixture
def sandbox(sandbox_base: str) -> Iterator[Sandbox]:
    box = Sandbox(sandbox_base)
    box.reset()
    try:
        yield box
    finally:
        box.close()
        box.reset()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: connection refused."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
