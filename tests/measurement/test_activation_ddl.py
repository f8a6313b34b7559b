"""The dbt project creates the activation tables measurement reads (on-run-start) with the engine's
own DDL: the copy in dbt_project/macros/measurement.sql must not drift from the Python."""

from __future__ import annotations

import re

from activations import settings
from activations.engine import state
from activations.messaging import ledger
from tests.ddl import columns, declared


def test_the_macro_ddl_is_the_engine_ddl():
    python = {**{name: ledger.TABLES[name] for name in ("message_ledger", "suppression_list")},
              "sync_runs": state.TABLES["sync_runs"]}
    assert declared("measurement.sql", "activation_tables") == {name: columns(ddl) for name, ddl in python.items()}


def test_columns_added_later_reach_older_warehouses_through_dbt_too():
    macro = (settings.dbt_project_dir() / "macros" / "measurement.sql").read_text()
    added = macro.split("macro activation_added_columns", 1)[1].split("endmacro", 1)[0]
    declared = {name: [" ".join(c.split()) for c in columns.split(",")]
                for name, columns in re.findall(r"'(\w+)': '([^']+)'", added)}
    python = {name: [f"{c} {t}" for c, t in columns.items()]
              for name, columns in {**ledger.ADDED_COLUMNS, **state.ADDED_COLUMNS}.items()
              if name in ("message_ledger", "sync_runs")}
    assert declared == python
