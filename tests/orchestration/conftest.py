"""Fixtures for the Dagster definitions: the dbt manifest they load, and one warehouse built
end to end by Dagster from the handcrafted landing folder (with one broken file added),
shared by the module's tests; tests that damage it work on a copy.

`orchestration` is imported inside fixtures, after the manifest is prepared, never at module
level: collecting this folder on an xdist worker that doesn't run it costs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import HANDCRAFTED_AS_OF

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
BROKEN_FILE = "crm/contacts/broken.csv"


def _manifest_is_current(manifest: Path) -> bool:
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    sources = [p for p in DBT_PROJECT.rglob("*") if p.is_file()
               and p.relative_to(DBT_PROJECT).parts[0] not in ("target", "logs", "dbt_packages")]
    return all(p.stat().st_mtime <= built for p in sources)


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """dbt_project/target/manifest.json, parsed unless it is newer than every project file (as `make` does)."""
    from activations.build import dbt_executable

    manifest = DBT_PROJECT / "target" / "manifest.json"
    if not _manifest_is_current(manifest):
        env = {k: v for k, v in os.environ.items() if k not in ("DBT_TARGET_PATH", "DBT_LOG_PATH")}
        subprocess.run([dbt_executable(), "parse", "--quiet", "--project-dir", str(DBT_PROJECT),
                        "--profiles-dir", str(DBT_PROJECT)], cwd=DBT_PROJECT, env=env, check=True)
    return manifest


@pytest.fixture(scope="session")
def defs(dbt_manifest):
    from orchestration.definitions import defs

    return defs


@pytest.fixture(scope="session")
def pinned_as_of():
    """The handcrafted data's "now", for every run of the session (read when a dbt step starts)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTIVA_AS_OF", HANDCRAFTED_AS_OF.isoformat())
        yield HANDCRAFTED_AS_OF


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> str:
    """The destinations' sandbox the syncs send to (destinations.yml's defaults point at ATTIVA_SANDBOX_PORT) and
    its SMTP server the triggered email goes to (ATTIVA_SMTP_PORT); file exports go under a temporary ATTIVA_DATA."""
    from sandbox.server import running_sandbox

    base = tmp_path_factory.mktemp("sandbox")
    with running_sandbox(base / "state", port=0, smtp_port=0) as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTIVA_SANDBOX_PORT", url.rsplit(":", 1)[1])
        patch.setenv("ATTIVA_SMTP_PORT", str(url.smtp_port))
        patch.setenv("ATTIVA_ESP_EVENTS_URL", url.events_url)  # as make demo and make dev set it
        patch.setenv("ATTIVA_DATA", str(base / "data"))
        yield url


def resources_for(warehouse: Path, landing: Path) -> dict:
    from orchestration.defs.dbt import dbt_resource
    from orchestration.defs.resources import Landing, Warehouse
    from orchestration.defs.syncs import Destinations

    return {"warehouse": Warehouse(path=str(warehouse)), "landing": Landing(path=str(landing)), "dbt": dbt_resource(),
            "destinations": Destinations()}


def everything(defs) -> list:
    """Every asset and check definition, for dg.materialize."""
    return [*defs.assets, *defs.asset_checks]


@dataclass
class Built:
    warehouse: Path
    landing: Path
    instance: object  # dg.DagsterInstance
    result: object  # dg.ExecuteInProcessResult
    seconds: float

    def copy(self, folder: Path) -> Path:
        """A copy of the built warehouse to damage; the original stays clean for other tests."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "warehouse.duckdb"
        shutil.copy(self.warehouse, target)
        return target


@pytest.fixture(scope="session")
def built(defs, handcrafted_landing, pinned_as_of, sandbox, tmp_path_factory) -> Built:
    """Ingestion, both dbt steps, every gate and every sync (to the sandbox) materialized by Dagster
    into a fresh warehouse."""
    import dagster as dg

    base = tmp_path_factory.mktemp("orchestration")
    landing = base / "landing"
    shutil.copytree(handcrafted_landing, landing)
    broken = landing / BROKEN_FILE
    broken.write_text("contact_id,created_at\nC99,2024-01-01\n")  # no updated_at: the whole file fails
    warehouse = base / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = dg.materialize(everything(defs), resources=resources_for(warehouse, landing), instance=instance,
                            raise_on_error=False)
    return Built(warehouse, landing, instance, result, time.monotonic() - started)


@dataclass
class Blocked:
    warehouse: Path
    instance: object  # dg.DagsterInstance
    result: object  # dg.ExecuteInProcessResult


@pytest.fixture(scope="session")
def blocked_by_customers_gate(defs, built, tmp_path_factory) -> Blocked:
    """A run where marts.customers holds a duplicated customer id: the customers gate, then the
    audiences (which it must stop) and their gates. dbt's own unique test would have caught a
    duplicate made by dbt; this one slips in after dbt, where only the gate can see it."""
    import dagster as dg
    import duckdb

    from orchestration.defs.checks import GATE_CHECK
    from orchestration.defs.dbt import audience_keys, customers_key

    warehouse = built.copy(tmp_path_factory.mktemp("blocked"))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into marts.customers select * from marts.customers order by customer_id limit 1")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        everything(defs), resources=resources_for(warehouse, built.landing), instance=instance,
        selection=dg.AssetSelection.checks(dg.AssetCheckKey(customers_key(), GATE_CHECK))
        | dg.AssetSelection.assets(*audience_keys()),
        raise_on_error=False)
    return Blocked(warehouse, instance, result)
