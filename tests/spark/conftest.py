"""The handcrafted people built on a local Apache Spark (dbt-spark, session mode) from the same raw
tables as the DuckDB build, and Spark's output copied back into a DuckDB file, so the DuckDB
tests' own helpers and expectations read it unchanged.

Without pyspark (pip install -e '.[spark]') or Java 17 the tests skip and say why; with
ATTIVA_REQUIRE_SYSTEM=1 (CI) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from activations.build import build_warehouse, dbt_command, run_dbt
from activations.spark_warehouse import naive_utc
from tests.conftest import HANDCRAFTED_AS_OF

# A few dozen people: 2 partitions per shuffle, not the laptop default of 8, is less scheduling.
SHUFFLE_PARTITIONS = "2"


def _unavailable(reason: str):
    if os.environ.get("ATTIVA_REQUIRE_SYSTEM") == "1":
        pytest.fail(f"ATTIVA_REQUIRE_SYSTEM=1 and the Spark tests cannot run: {reason}")
    pytest.skip(reason)


def _check_requirements():
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        _unavailable(f"{exc.name} is not installed (pip install -e '.[spark]')")
    java = shutil.which("java")
    if java is None:
        _unavailable("no `java` on PATH (Spark 4 needs Java 17: Debian's openjdk-17-jre-headless)")
    version = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    if '"1.' in version or '"11' in version:
        _unavailable(f"Spark 4 needs Java 17 or later, found: {version.splitlines()[0]}")


def model_relations(manifest: Path) -> list[str]:
    """schema.name of every model and seed dbt built."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return sorted(f"{n['schema']}.{n['alias']}" for n in nodes if n["resource_type"] in ("model", "seed"))


@pytest.fixture(scope="session")
def spark_handcrafted(handcrafted_warehouse: Path, tmp_path_factory) -> Path:
    """A DuckDB file holding what the Spark build wrote: every model and seed, same schema and name.

    The raw tables come from the DuckDB build's warehouse (a copy, so the two builds keep their
    own dbt target folders); Spark keeps its tables and metastore in a folder of its own.
    """
    _check_requirements()
    root = tmp_path_factory.mktemp("spark")
    warehouse = root / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTIVA_SPARK_DIR", str(root / "spark"))
        mp.setenv("ATTIVA_SPARK_SHUFFLE_PARTITIONS", SHUFFLE_PARTITIONS)
        result = build_warehouse(as_of=HANDCRAFTED_AS_OF, warehouse=warehouse, target="spark")
        assert result.ok, f"{result}\n{result.output[-3000:]}"
        # Production builds leave dbt's unit tests out: run them here, on the tables just built
        # (dbt reads the parents' column types from them), while no session holds the metastore.
        unit_tests = run_dbt(dbt_command("test", HANDCRAFTED_AS_OF, select="test_type:unit", target="spark"),
                             warehouse=warehouse)
        (root / "unit_tests.txt").write_text(f"{unit_tests.ok}\n{unit_tests}")

        from activations import spark

        outputs = root / "spark_outputs.duckdb"
        with spark.session() as session, duckdb.connect(str(outputs)) as con:
            for relation in model_relations(root / "dbt_target_spark" / "manifest.json"):
                schema, name = relation.split(".")
                table = naive_utc(session.table(relation).toArrow())
                con.execute(f"create schema if not exists {schema}")
                con.register("spark_rows", table)
                con.execute(f"create table {schema}.{name} as select * from spark_rows")
                con.unregister("spark_rows")
    return outputs
