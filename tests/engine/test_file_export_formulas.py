"""A CRM name that is a spreadsheet formula reaches the file export as text, never as a live formula."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from activations.engine.run import run_sync

from .setups import AUDIENCE, FAST_POLICY, add_people, make_client, make_sync

pytestmark = pytest.mark.xdist_group("engine")

NAMES = {
    "c0": ('=HYPERLINK("https://evil.example","Invoice")', '\'=HYPERLINK("https://evil.example","Invoice")'),
    "c1": ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    "c2": ("-2+3", "'-2+3"),
    "c3": ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    "c4": ("\t=1+1", "'\t=1+1"),
    "c5": ("\r=1+1", "'\r=1+1"),
    "c6": ("Anna", "Anna"),
    "c7": ("-5", "-5"),  # just a number: a spreadsheet shows -5, nothing runs
    "c8": ("D'Angelo", "D'Angelo"),
}


def test_text_cells_that_would_run_as_formulas_are_written_as_text(con, tmp_path: Path) -> None:
    add_people(con, len(NAMES))
    for key, (name, _) in NAMES.items():
        con.execute(f"update {AUDIENCE} set first_name = ?, score = -5 where customer_id = ?", [name, key])
    folder = tmp_path / "exports"
    sync = make_sync("file_export", fields={"first_name": "first_name", "score": "score"})

    result = run_sync(con, sync, make_client("", "file_export", folder=folder), policy=FAST_POLICY)

    assert (result.status, result.confirmed) == ("success", len(NAMES))
    [exported] = folder.glob("*.csv")
    with exported.open(newline="", encoding="utf-8") as stream:
        written = list(csv.DictReader(stream))
    assert {row["key"]: row["first_name"] for row in written} == {k: safe for k, (_, safe) in NAMES.items()}
    assert {row["score"] for row in written} == {"-5"}  # a number column keeps its sign
    assert {row["email"] for row in written} == {f"person{i}@example.com" for i in range(len(NAMES))}


def test_parquet_exports_keep_the_text_as_it_is(con, tmp_path: Path) -> None:
    add_people(con, 1)
    con.execute(f"update {AUDIENCE} set first_name = '=1+1'")
    folder = tmp_path / "exports"
    client = make_client("", "file_export", folder=folder, format="parquet")

    run_sync(con, make_sync("file_export"), client, policy=FAST_POLICY)

    [exported] = folder.glob("*.parquet")
    assert pl.read_parquet(exported)["first_name"].to_list() == ["=1+1"]  # not a spreadsheet format
