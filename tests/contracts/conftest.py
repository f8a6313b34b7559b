"""Contract tests: the vendors' own Python SDKs drive the sandbox, for every operation Attiva uses.

Attiva's clients were written against the sandbox, so a sandbox mistake would hide a client
mistake; here clients nobody in this project wrote check the sandbox speaks the vendors' contracts.
One sandbox per session (per xdist worker); each test starts from empty state and no faults.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import running_sandbox

TYPES = ("hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook", "meta_conversions",
         "google_conversions", "meta_catalog")
TOKENS = {t: f"contract-{t}-Jq3Vx8Lp" for t in TYPES}


class Sandbox:
    """The running sandbox: its base URL, each vendor's root, and what each vendor holds."""

    def __init__(self, base: str) -> None:
        self.base = base

    def root(self, dest_type: str) -> str:
        return f"{self.base}/{dest_type}"

    def state(self, dest_type: str) -> dict[str, Any]:
        answer = requests.get(f"{self.base}/_sandbox/state/{dest_type}", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def reset(self) -> None:
        requests.delete(f"{self.base}/_sandbox/faults", timeout=10).raise_for_status()
        requests.post(f"{self.base}/_sandbox/reset", json={}, timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def sandbox_base(tmp_path_factory) -> Iterator[str]:
    with running_sandbox(tmp_path_factory.mktemp("contract-sandbox"), tokens=TOKENS,
                         sendgrid_import_seconds=0.05) as base:
        yield base


@pytest.fixture
def sandbox(sandbox_base: str) -> Iterator[Sandbox]:
    box = Sandbox(sandbox_base)
    box.reset()
    yield box
    box.reset()


@pytest.fixture(autouse=True)
def loggers_as_they_were() -> Iterator[None]:
    """The SDKs set global logging state (OpenAPI clients put `urllib3` at WARNING, Google's stop
    `google` propagating): put it back, so tests run after these in one process see their logs."""
    before = {name: (logger.level, logger.propagate, logger.disabled)
              for name, logger in logging.root.manager.loggerDict.items() if isinstance(logger, logging.Logger)}
    yield
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.level, logger.propagate, logger.disabled = before.get(name, (logging.NOTSET, True, False))
