"""Fixtures for the engine's integration tests: a real DuckDB warehouse file holding
audiences.aud_test, and one sandbox per test session (per xdist worker) over real HTTP,
its state and faults reset before every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from activations.destinations.base import Destination
from activations.engine import pace

from .setups import TOKENS, create_audience, make_client


@pytest.fixture(scope="session")
def sandbox_base(tmp_path_factory) -> Iterator[str]:
    from sandbox.server import running_sandbox

    state_dir = tmp_path_factory.mktemp("engine-sandbox")
    with running_sandbox(state_dir, tokens=TOKENS, sendgrid_import_seconds=0.05) as base:
        yield base


class Sandbox:
    """The running sandbox's control surface, and clients pointed at it (closed after the test)."""

    def __init__(self, base: str, export_folder: Path) -> None:
        self.base = base
        self.export_folder = export_folder
        self.http = requests.Session()
        self.clients: list[Destination] = []

    def client(self, dest_type: str, **options: Any) -> Destination:
        client = make_client(self.base, dest_type, folder=self.export_folder, **options)
        self.clients.append(client)
        return client

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
def sandbox(sandbox_base: str, tmp_path: Path, monkeypatch) -> Iterator[Sandbox]:
    # Token buckets live for the process: a pause one test's 429 left behind must not slow the next.
    monkeypatch.setattr(pace, "_buckets", {})
    box = Sandbox(sandbox_base, tmp_path / "exports")
    box.reset()
    try:
        yield box
    finally:
        box.close()
        box.reset()


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        create_audience(con)
    return path


@pytest.fixture
def con(warehouse_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file with an empty audiences.aud_test."""
    con = duckdb.connect(str(warehouse_path))
    yield con
    con.close()


@pytest.fixture
def table_text(con) -> Callable[[], str]:
    """Every activation.* table's content as one string, to search for what must never be stored."""

    def dump() -> str:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'activation'").fetchall()]
        return "\n".join(repr(con.execute(f"select * from activation.{t}").fetchall()) for t in tables)

    return dump
