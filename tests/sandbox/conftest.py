"""Fixtures for the sandbox tests: a running server on a free loopback port."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import TOKENS

from sandbox import running_sandbox


@pytest.fixture(autouse=True)
def _no_sandbox_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the developer's shell must not leak into the tests."""
    for name in list(os.environ):
        if name.startswith("ATTIVA_SANDBOX_") or (name.startswith("ATTIVA_") and name.endswith("_TOKEN")):
            monkeypatch.delenv(name)


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a sandbox with extra settings; stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(state_dir: Path | None = None, **config: Any) -> str:
            config.setdefault("tokens", TOKENS)
            config.setdefault("sendgrid_import_seconds", 0.2)
            return stack.enter_context(running_sandbox(state_dir or tmp_path / "sandbox", **config))

        yield start


@pytest.fixture
def sandbox(start_sandbox: Callable[..., str]) -> str:
    """The base URL of a sandbox with default limits and no faults."""
    return start_sandbox()
