"""Where the pipeline reads and writes: the warehouse file and the landing folder.

Both default to the environment (`ATTIVA_WAREHOUSE`, `ATTIVA_LANDING`, through
`activations.settings`), resolved when a step runs, not when definitions load, so loading
never touches the warehouse. dbt's profile reads `ATTIVA_WAREHOUSE` too: `dbt_environment`
pins it to this resource's file for the dbt subprocess, so dbt and Python steps always
agree on the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from activations import settings, warehouse

# Every asset, check and op that opens the warehouse is in this pool. dagster.yaml limits it to
# one run at a time (granularity: run), since DuckDB lets one process write a file at a time.
WAREHOUSE_POOL = "warehouse"


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse file."""

    path: str = Field(default="", description="The DuckDB file; empty = ATTIVA_WAREHOUSE (default data/warehouse.duckdb).")

    def file(self) -> Path:
        return Path(self.path or settings.warehouse_path()).resolve()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection closed on exit: steps never hold the file's lock longer than they use it."""
        with warehouse.connect(self.file(), read_only=read_only) as con:
            yield con

    def dbt_target_path(self) -> Path:
        """dbt's artifacts and logs for Dagster runs, beside the warehouse they describe. One folder per
        warehouse (runs on one warehouse never overlap), so dbt's partial parse is reused between steps."""
        return self.file().parent / "dagster_dbt"

    @contextmanager
    def dbt_environment(self) -> Iterator[None]:
        """Point dbt's profile (env ATTIVA_WAREHOUSE) at this file while a dbt subprocess starts, once no
        other process holds the file (dbt itself only retries for a few seconds: profiles.yml)."""
        warehouse.wait_until_free(self.file())
        key, value = "ATTIVA_WAREHOUSE", str(self.file())
        before = os.environ.get(key)
        os.environ[key] = value
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before


class Landing(dg.ConfigurableResource):
    """The landing folder that exports are dropped into."""

    path: str = Field(default="", description="The landing folder; empty = ATTIVA_LANDING (default data/landing).")

    def folder(self) -> Path:
        return Path(self.path or settings.landing_path()).resolve()


def definitions() -> dg.Definitions:
    """The warehouse and the landing folder, for every asset, sensor and op that reads them."""
    return dg.Definitions(resources={"warehouse": Warehouse(), "landing": Landing()})
