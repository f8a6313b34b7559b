"""dbt's output, as the CLI, Dagster's event log and its failure text show it: plain text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from activations.build import dbt_command, run_dbt

SEED = Path(__file__).parents[2] / "dbt_project" / "seeds" / "first_name_variants.csv"


def test_dbt_output_carries_no_terminal_colour_codes(tmp_path):
    # dbt colours its status words (OK, ERROR) unless told not to; raw in logs and alerts
    result = run_dbt(dbt_command("seed", datetime(2026, 11, 20, tzinfo=UTC), select="first_name_variants"),
                     warehouse=tmp_path / "warehouse.duckdb")
    assert result.ok, result.output[-2000:]
    assert f"INSERT {len(SEED.read_text().splitlines()) - 1}" in result.output  # every row of the seed, counted
    assert "\x1b[" not in result.output
