"""The production instance files (deploy/) are the local instance (dagster.yaml) plus where they
store and how they launch runs: if their run queue or pool limits drifted, production would run
two warehouse writers at once where `make dev` never does. Credentials only ever come from the
environment. (Running the daemon on the Postgres one: test_daemon_on_postgres.py.)"""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.production.conftest import ROOT

PG_ENV = {"username": "DAGSTER_PG_USERNAME", "password": "DAGSTER_PG_PASSWORD", "hostname": "DAGSTER_PG_HOST",
          "port": "DAGSTER_PG_PORT", "db_name": "DAGSTER_PG_DB"}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def test_the_postgres_instance_keeps_the_local_rules_and_takes_credentials_from_the_environment():
    local, postgres = load("dagster.yaml"), load("deploy/dagster.postgres.yaml")
    assert {k: v for k, v in postgres.items() if k != "storage"} == local
    db = postgres["storage"]["postgres"]["postgres_db"]
    assert {field: db[field] for field in PG_ENV} == {field: {"env": var} for field, var in PG_ENV.items()}


def test_the_kubernetes_instance_is_the_postgres_instance_with_a_pod_per_run():
    postgres, k8s = load("deploy/dagster.postgres.yaml"), load("deploy/dagster.k8s.yaml")
    assert {k: v for k, v in k8s.items() if k != "run_launcher"} == postgres
    launcher = k8s["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    # Secrets reach run pods by the name of a Kubernetes Secret, never by value.
    assert launcher["config"]["env_secrets"] and "password" not in yaml.safe_dump(launcher).lower()


@pytest.mark.parametrize("name", ["deploy/dagster.postgres.yaml", "deploy/dagster.k8s.yaml"])
def test_the_instance_files_are_valid_dagster_instance_config(name, tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_postgres import DagsterPostgresStorage

    for var in PG_ENV.values():
        monkeypatch.setenv(var, "5432" if var == "DAGSTER_PG_PORT" else "x")
    shutil.copy(ROOT / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises naming the field when invalid
    # What dagster-postgres makes of it once the environment is read: the port as a number.
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert storage.value["postgres_db"]["port"] == 5432
