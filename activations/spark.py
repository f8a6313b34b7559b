"""The local Spark target: a session set up like dbt's `spark` profile, and the raw tables landed in it.

Ingestion writes the raw tables into DuckDB. On Spark, dbt's sources read the same tables as
Parquet files registered in Spark's catalog (schema `raw`): `land_raw` writes each one with
DuckDB's COPY and (re)creates the Spark table over it, so Spark sees exactly what DuckDB holds.
pyspark is an optional dependency (`pip install -e '.[spark]'`), imported only here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jinja2
import yaml

from activations import settings
from activations.ingest.contract import SOURCES
from activations.ingest.tables import LINEAGE, SCHEMA
from activations.warehouse import connect, has_table


class SparkUnavailable(RuntimeError):
    """The Spark target cannot start here (pyspark or Java missing); says what to install."""


# Contract types are Spark type names already; lineage columns come as DuckDB types.
LINEAGE_TYPES = {"VARCHAR": "string", "BIGINT": "bigint", "TIMESTAMP": "timestamp"}


def session_settings(spark_dir: Path | None = None) -> dict[str, str]:
    """The `spark` target's server_side_parameters from dbt_project/profiles.yml, for `spark_dir`.

    One source of truth: a session started here sees the same tables and metastore as dbt.
    """
    spark_dir = Path(spark_dir or settings.spark_dir()).resolve()
    env = {**os.environ, "ATTIVA_SPARK_DIR": str(spark_dir)}
    text = (settings.dbt_project_dir() / "profiles.yml").read_text()
    rendered = jinja2.Template(text).render(env_var=lambda name, default=None: env.get(name, default))
    target = yaml.safe_load(rendered)["attiva"]["outputs"]["spark"]
    # dbt-spark always turns ANSI mode off; a session of ours must read SQL the same way.
    return {**{str(k): str(v) for k, v in target["server_side_parameters"].items()}, "spark.sql.ansi.enabled": "false"}


@contextmanager
def session(spark_dir: Path | None = None) -> Iterator:
    """A local SparkSession over the spark target's folder; its JVM is shut down on exit.

    Derby, the local metastore, admits one process at a time, so a dbt run after this one
    (in its own process) needs the JVM gone, not just the session stopped.
    """
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SparkUnavailable("the Spark target needs pyspark: pip install -e '.[spark]' (and Java 17)") from exc
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise SparkUnavailable("the Spark target needs Java 17: no `java` on PATH and JAVA_HOME is not set")
    spark_dir = Path(spark_dir or settings.spark_dir()).resolve()
    spark_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_settings(spark_dir).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        spark.stop()
        gateway = SparkContext._gateway
        if gateway is not None:
            gateway.shutdown()
            if getattr(gateway, "proc", None) is not None:
                gateway.proc.stdin.close()  # the gateway JVM exits when its stdin closes
                gateway.proc.wait(timeout=60)
            SparkContext._gateway = None
            SparkContext._jvm = None


def spark_columns(source) -> list[tuple[str, str]]:
    """(name, Spark type) of a source's raw table: the contract columns, then lineage."""
    return [(c.name, c.type) for c in source.columns] + [(n, LINEAGE_TYPES[t]) for n, t in LINEAGE]


def land_raw(spark, warehouse: Path | None = None, spark_dir: Path | None = None) -> dict[str, int]:
    """Copy every raw table of the DuckDB warehouse into Spark (schema `raw`); returns rows per table.

    Each table is replaced whole: a Parquet file written by DuckDB, and an external Spark table
    over its folder. A source never ingested gets an empty table, as dbt's sources need it.
    """
    warehouse = Path(warehouse or settings.warehouse_path())
    if not warehouse.exists():
        raise FileNotFoundError(f"no DuckDB warehouse at {warehouse}: run `attiva ingest` first")
    raw_dir = Path(spark_dir or settings.spark_dir()).resolve() / "raw"
    spark.sql(f"create schema if not exists {SCHEMA}")
    landed = {}
    with connect(warehouse, read_only=True) as con:
        # Timestamps go out as UTC instants, which Spark reads as its `timestamp` (the session is UTC).
        con.execute("set TimeZone = 'UTC'")
        for source in SOURCES:
            columns = spark_columns(source)
            folder = raw_dir / source.name
            spark.sql(f"drop table if exists {SCHEMA}.{source.name}")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            select = ", ".join(
                f'cast("{name}" as timestamptz) as "{name}"' if kind == "timestamp" else f'"{name}"'
                for name, kind in columns)
            if has_table(con, SCHEMA, source.name):
                con.execute(f"copy (select {select} from {SCHEMA}.\"{source.name}\") "
                            f"to '{folder / 'part-0.parquet'}' (format parquet)")
                landed[source.name] = con.execute(f'select count(*) from {SCHEMA}."{source.name}"').fetchone()[0]
            else:
                landed[source.name] = 0
            ddl = ", ".join(f"`{name}` {kind}" for name, kind in columns)
            spark.sql(f"create table {SCHEMA}.{source.name} ({ddl}) using parquet location '{folder}'")
    return landed


def land_matching_links(spark, warehouse: Path | None = None, spark_dir: Path | None = None) -> int:
    """Copy probabilistic matching's links (matching.links) from the DuckDB warehouse into Spark; returns rows.

    Matching runs on DuckDB (`attiva build`); a Spark build reads the links it left, like the raw
    tables, so both engines build the same identity graph. None yet: an empty table.
    """
    from activations.identity import links

    warehouse = Path(warehouse or settings.warehouse_path())
    columns = [c.strip().split() for c in links.TABLES["links"].split(",")]
    folder = Path(spark_dir or settings.spark_dir()).resolve() / links.SCHEMA / "links"
    spark.sql(f"create schema if not exists {links.SCHEMA}")
    spark.sql(f"drop table if exists {links.SCHEMA}.links")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = 0
    with connect(warehouse, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        if has_table(con, links.SCHEMA, "links"):
            select = ", ".join(f'cast("{name}" as timestamptz) as "{name}"' if kind == "timestamp" else f'"{name}"'
                               for name, kind in columns)
            con.execute(f"copy (select {select} from {links.SCHEMA}.links) to '{folder / 'part-0.parquet'}' "
                        f"(format parquet)")
            rows = con.execute(f"select count(*) from {links.SCHEMA}.links").fetchall()[0][0]
    ddl = ", ".join(f"`{name}` {kind}" for name, kind in columns)
    spark.sql(f"create table {links.SCHEMA}.links ({ddl}) using parquet location '{folder}'")
    return rows
