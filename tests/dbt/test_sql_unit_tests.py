"""dbt's unit tests (`unit_tests:` beside the models): each model's SQL on fixed inputs.

Production builds leave them out (activations/build.py WITHOUT_UNIT_TESTS, as dbt advises: their
inputs never change with the data); they run here, once per change of the project, against the
handcrafted warehouse (dbt reads the parents' column types from it). tests/spark runs them on Spark.
"""

from __future__ import annotations

import json
import shutil

import pytest

from activations.build import dbt_command, run_dbt
from tests.conftest import HANDCRAFTED_AS_OF

pytestmark = pytest.mark.xdist_group("handcrafted")


def test_every_sql_unit_test_of_the_project_passes(handcrafted_warehouse, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(handcrafted_warehouse, warehouse)
    result = run_dbt(dbt_command("test", HANDCRAFTED_AS_OF, select="test_type:unit"), warehouse=warehouse)
    assert result.ok, str(result)
    manifest = json.loads((tmp_path / "dbt_target" / "manifest.json").read_text())
    declared = [i for i in manifest["unit_tests"] if i.startswith("unit_test.attiva.")]
    assert len(declared) > 30 and result.counts.get("pass") == len(declared), result.counts  # each ran and passed
