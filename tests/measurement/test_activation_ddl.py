"""The dbt project creates the activation tables measurement reads (on-run-start) with the engine's
own DDL: the copy in dbt_project/macros/measurement.sql must not drift from the Python."""

from __future__ import annotations

import re

from activations import settings
from activations.engine import state
from activations.messaging import ledger


def _columns(ddl: str) -> list[str]:
    return [" ".join(c.split()) for c in ddl.split(",")]


def test_the_macro_ddl_is_the_engine_ddl():
    macro = (settings.dbt_project_dir() / "macros" / "measurement.sql").read_text()
    declared = dict(re.findall(r"'(\w+)': '([^']+)'", macro))
    python = {**{name: ledger.TABLES[name] for name in ("message_ledger", "suppression_list")},
              "sync_runs": state.TABLES["sync_runs"]}
    assert set(declared) == set(python)
    for name, ddl in python.items():
        assert _columns(declared[name]) == _columns(ddl), name
