"""Fixtures for Dagster's production instance: a real PostgreSQL server started for the session,
and a DAGSTER_HOME whose dagster.yaml is deploy/dagster.postgres.yaml, on a fresh database.

Without PostgreSQL's server programs (or dagster-postgres) the tests skip and say why; with
ATTIVA_REQUIRE_SYSTEM=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.orchestration.conftest import dbt_manifest  # noqa: F401  (the project's location needs the manifest)
from tests.production import postgres_server

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_INSTANCE = ROOT / "deploy" / "dagster.postgres.yaml"


def _unavailable(reason: str):
    if os.environ.get("ATTIVA_REQUIRE_SYSTEM") == "1":
        pytest.fail(f"ATTIVA_REQUIRE_SYSTEM=1 and the PostgreSQL tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of its own for the session."""
    try:
        import dagster_postgres  # noqa: F401
    except ImportError:
        _unavailable("dagster-postgres is not installed (pip install -e '.[postgres]')")
    if reason := postgres_server.unavailable():
        _unavailable(reason)
    with postgres_server.throwaway_server() as server:
        yield server


@dataclass
class PostgresHome:
    home: Path  # DAGSTER_HOME, holding deploy/dagster.postgres.yaml as dagster.yaml
    server: postgres_server.Server
    db_name: str

    def env(self) -> dict[str, str]:
        return {"DAGSTER_HOME": str(self.home), **self.server.env(self.db_name)}


@pytest.fixture
def postgres_home(postgres, tmp_path, monkeypatch) -> PostgresHome:
    """A fresh database and a DAGSTER_HOME using it; the DAGSTER_PG_* variables are set for this test."""
    db_name = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres.create_database(db_name)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_INSTANCE, home / "dagster.yaml")
    found = PostgresHome(home, postgres, db_name)
    for key, value in found.env().items():
        monkeypatch.setenv(key, value)
    return found
