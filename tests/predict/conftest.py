"""CDNOW (the calibration sample of Fader, Hardie & Lee 2005, shipped inside the `lifetimes` package) as a
per-customer summary, and its transaction log as a warehouse's `marts.orders`."""

from __future__ import annotations

import csv
import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from activations.predict import clv

AS_OF = datetime(1997, 10, 1, tzinfo=UTC)  # the end of week 39, the paper's calibration period


def cdnow_file(name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the lifetimes package (which ships CDNOW) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / name


@pytest.fixture(scope="session")
def cdnow() -> clv.Summary:
    """x repeat purchases, t_x recency and T in weeks, zbar the average value of the repeat purchases."""
    with cdnow_file("cdnow_customers_summary_with_transactions.csv").open() as f:
        rows = list(csv.DictReader(f))
    return clv.Summary.of(*([row[c] for row in rows] for c in ("x", "t_x", "T", "zbar")))


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """marts.orders holding CDNOW_sample.txt (id, sample index, YYYYMMDD, quantity, amount), every order completed."""
    rows = [line.split() for line in cdnow_file("CDNOW_sample.txt").read_text().splitlines() if line.strip()]
    orders = pa.table({
        "customer_id": [r[0] for r in rows],
        "ordered_at": [datetime.strptime(r[2], "%Y%m%d").replace(hour=12) for r in rows],
        "is_completed": [True] * len(rows),
        "total_amount": [float(r[4]) for r in rows],
    })
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.register("cdnow", orders)
        con.execute("create table marts.orders as select * from cdnow")
    return path
