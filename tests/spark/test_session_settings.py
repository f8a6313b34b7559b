"""Attiva's own Spark session (landing the raw tables, reading results) and dbt's `spark` target
must open the same tables and metastore: both come from dbt_project/profiles.yml. No JVM needed."""

from __future__ import annotations

from activations.spark import session_settings


def test_the_session_uses_the_spark_targets_folder_and_settings(tmp_path):
    settings = session_settings(tmp_path / "spark")
    folder = str((tmp_path / "spark").resolve())
    assert settings["spark.sql.warehouse.dir"] == f"{folder}/warehouse"
    assert settings["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        f"jdbc:derby:;databaseName={folder}/metastore_db;create=true")
    # UTC like the DuckDB target, plain Parquet tables, and dbt-spark's forced non-ANSI SQL.
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.sources.default"] == "parquet"
    assert settings["spark.sql.ansi.enabled"] == "false"


def test_session_settings_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTIVA_SPARK_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ATTIVA_SPARK_DRIVER_MEMORY", "2g")
    settings = session_settings()
    assert settings["spark.sql.warehouse.dir"] == f"{(tmp_path / 'elsewhere').resolve()}/warehouse"
    assert settings["spark.driver.memory"] == "2g"
