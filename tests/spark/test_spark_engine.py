"""The activation engine on Spark: plan, commit, rejected rows and the run log kept in Spark tables
(the `spark` target's own Parquet tables and metastore), through the same engine code as DuckDB.

Each case runs the same syncs from both warehouses, each into a sandbox of its own, and compares
what the destinations hold and what the engine recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests

from activations import spark
from activations.destinations import load_destinations
from activations.engine.run import run_sync
from activations.spark_warehouse import SparkWarehouse
from activations.syncs import declared, run
from sandbox.faults import FaultInjector, FaultSettings
from sandbox.server import running_sandbox
from tests.engine.setups import (
    AUDIENCE,
    FAST_POLICY,
    OPTIONS,
    TOKENS,
    add_people,
    create_audience,
    make_client,
    make_sync,
)
from tests.spark.conftest import SHUFFLE_PARTITIONS

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark"),
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

# Syncs of the handcrafted audiences covering hashing (Meta), numbers and a contact list (HubSpot),
# timestamps and lists in a JSON body (the webhook) and a CRM upsert without consent (Salesforce).
DECLARED = ("aud_champions__meta", "aud_champions__hubspot", "aud_cart_abandoners__webhook",
            "aud_leads_to_nurture__salesforce")


class Engine:
    """One warehouse (DuckDB or Spark) and a sandbox of its own."""

    def __init__(self, name: str, con, base: str) -> None:
        self.name, self.con, self.base = name, con, base

    def destinations(self):
        env = {}
        for config in load_destinations(env={}).values():
            prefix = f"ATTIVA_{config.name.upper()}"
            env[f"{prefix}_URL"] = f"{self.base}/{config.type}"
            env[f"{prefix}_TOKEN"] = TOKENS.get(config.type, "")
        return load_destinations(env=env)

    def rows(self, query: str, params=()) -> list[tuple]:
        return sorted(self.con.execute(query, list(params)).fetchall(), key=repr)


@pytest.fixture(scope="module")
def engines(spark_handcrafted: Path, handcrafted_warehouse: Path, tmp_path_factory) -> Iterator[dict[str, Engine]]:
    """The handcrafted build on DuckDB (a copy) and on Spark (the tables the Spark build left)."""
    root = tmp_path_factory.mktemp("spark-engine")
    shutil.copy(handcrafted_warehouse, root / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTIVA_SPARK_DIR", str(spark_handcrafted.parent / "spark"))
        mp.setenv("ATTIVA_SPARK_SHUFFLE_PARTITIONS", SHUFFLE_PARTITIONS)
        with (spark.session() as session, duckdb.connect(str(root / "warehouse.duckdb")) as duck,
              running_sandbox(root / "sandbox-duckdb", tokens=TOKENS, sendgrid_import_seconds=0.05) as duck_base,
              running_sandbox(root / "sandbox-spark", tokens=TOKENS, sendgrid_import_seconds=0.05) as spark_base):
            yield {"duckdb": Engine("duckdb", duck, duck_base),
                   "spark": Engine("spark", SparkWarehouse(session), spark_base)}


def comparable(engine: Engine, dest_type: str) -> object:
    """What the destination holds, without what differs between any two runs (ids, clocks)."""
    state = requests.get(f"{engine.base}/_sandbox/state/{dest_type}", timeout=30).json()
    if dest_type == "meta":
        return {aid: sorted(json.dumps(m, sort_keys=True) for m in _members(a["members"]))
                for aid, a in state["audiences"].items()}
    if dest_type == "hubspot":
        email_of = {c["id"]: email for email, c in state["contacts"].items()}
        return ({email: {k: v for k, v in c["properties"].items() if k not in ("createdate", "lastmodifieddate")}
                 for email, c in state["contacts"].items()},
                {state["list_defs"][lid]["name"]: sorted(email_of[m] for m in members)
                 for lid, members in state["lists"].items()})
    if dest_type == "webhook":
        return {path: e["rows"] for path, e in state["endpoints"].items()}
    if dest_type == "salesforce":
        return {sobject: {field: {key: {k: v for k, v in record.items() if k not in ("Id", "CreatedDate", "LastModifiedDate")}
                                  for key, record in records.items()}
                          for field, records in by_field.items()}
                for sobject, by_field in state["objects"].items()}
    raise ValueError(dest_type)


def copy_audience(duck, session) -> None:
    """The test audience, written on DuckDB, copied whole to Spark."""
    session.createDataFrame(duck.sql(f"select * from {AUDIENCE}").to_arrow_table()).write.mode(
        "overwrite").saveAsTable(AUDIENCE)


def _members(members) -> list:
    return list(members.values()) if isinstance(members, dict) else list(members)


def test_declared_syncs_send_the_same_rows_from_spark_as_from_duckdb(engines):
    syncs = {s.name: s for s in declared()}
    for name in DECLARED:
        sync = syncs[name]
        results = {}
        for engine in engines.values():
            result = run(sync, con=engine.con, destinations=engine.destinations(), policy=FAST_POLICY)
            results[engine.name] = (result.status, result.planned, result.confirmed, result.rejected, result.invalid)
        assert results["spark"] == results["duckdb"], name
        assert results["spark"][2] > 0, f"{name} sent nothing: the comparison would prove nothing"
        dest_type = engines["duckdb"].destinations()[sync.destination].type
        assert comparable(engines["spark"], dest_type) == comparable(engines["duckdb"], dest_type), name

    # The engine's own records agree too: the snapshot and the run log.
    snapshot = "select sync_name, row_key, identifiers from activation.sync_snapshots"
    runs = ("select sync_name, status, audience_rows, planned, sent, confirmed, rejected, invalid "
            "from activation.sync_runs")
    for query in (snapshot, runs):
        assert engines["spark"].rows(query) == engines["duckdb"].rows(query)

    # A second run finds nothing to send on either warehouse.
    for engine in engines.values():
        second = run(syncs[DECLARED[0]], con=engine.con, destinations=engine.destinations(), policy=FAST_POLICY)
        assert (second.status, second.planned) == ("success", 0), engine.name


def test_changes_rejects_and_retries_are_recorded_alike_on_spark(engines):
    """A mirror sync through adds, updates, removes and refused rows: Spark's records equal DuckDB's."""
    duck = engines["duckdb"].con
    session = engines["spark"].con.spark
    create_audience(duck)
    add_people(duck, 40)
    duck.execute(f"update {AUDIENCE} set email = 'not-an-email' where customer_id = 'c39'")  # set aside

    copy_audience(duck, session)
    faults = FaultSettings(row_reject_rate=0.2, seed=11)
    refused = {f"c{i}" for i in range(39) if FaultInjector("hubspot", faults).rejects(f"person{i}@example.com")}
    assert 2 <= len(refused) <= 20
    sync = make_sync("hubspot")
    clients = {}
    for engine in engines.values():
        requests_post(engine.base, "/_sandbox/faults", {"destination": "hubspot", "row_reject_rate": 0.2,
                                                         "seed": 11})
        clients[engine.name] = make_client(engine.base, "hubspot", token=TOKENS["hubspot"])

    def both() -> dict[str, tuple]:
        out = {}
        for engine in engines.values():
            r = run_sync(engine.con, sync, clients[engine.name], policy=FAST_POLICY)
            out[engine.name] = (r.status, r.planned, r.confirmed, r.rejected, r.invalid)
        assert out["spark"] == out["duckdb"]
        return out["spark"]

    def recorded(engine: Engine) -> dict:
        q = {"snapshot": "select row_key from activation.sync_snapshots where sync_name = ?",
             "rejects": "select row_key, kind, reason, http_status, attempts from activation.sync_rejects "
                        "where sync_name = ?",
             "runs": "select status, planned, confirmed, rejected, invalid from activation.sync_runs "
                     "where sync_name = ?"}
        return {name: engine.rows(query, [sync.name]) for name, query in q.items()}

    assert both() == ("delivered_except_invalid", 40, 39 - len(refused), len(refused), 1)
    spark_records = recorded(engines["spark"])
    assert spark_records == recorded(engines["duckdb"])
    assert {r[0] for r in spark_records["snapshot"]} == {f"c{i}" for i in range(39)} - refused
    assert {r[0]: r[4] for r in spark_records["rejects"]} == dict.fromkeys(refused | {"c39"}, 1)

    # Three leave, two change their name, four join, and the refused rows are tried again.
    duck.execute(f"delete from {AUDIENCE} where customer_id in ('c0', 'c1', 'c2')")
    renamed = sorted(f"c{i}" for i in range(3, 39) if f"c{i}" not in refused)[:2]
    duck.execute(f"update {AUDIENCE} set first_name = 'Renamed' where customer_id in ?", [renamed])
    add_people(duck, 4, start=100)
    copy_audience(duck, session)
    left = {"c0", "c1", "c2"}
    still_refused = refused - left
    status, planned, confirmed, rejected, invalid = both()
    assert (status, rejected, invalid) == ("delivered_except_invalid", len(still_refused), 1)
    spark_records = recorded(engines["spark"])
    assert spark_records == recorded(engines["duckdb"])
    assert {r[0]: r[4] for r in spark_records["rejects"]} == dict.fromkeys(still_refused | {"c39"}, 2)
    assert comparable(engines["spark"], "hubspot") == comparable(engines["duckdb"], "hubspot")
    contacts, lists = comparable(engines["spark"], "hubspot")
    members = set(lists[OPTIONS["hubspot"]["list"]])
    assert "person0@example.com" not in members and "person100@example.com" in members
    assert {contacts[f"person{key[1:]}@example.com"]["firstname"] for key in renamed} == {"Renamed"}


def requests_post(base: str, path: str, body: dict) -> None:
    requests.post(f"{base}{path}", json=body, timeout=10).raise_for_status()


@pytest.mark.parametrize("cut_after", [1, 3, 5])  # of the fold's 6 deletes here
def test_a_fold_cut_short_on_spark_is_finished_by_the_next_run(engines, monkeypatch, cut_after):
    """Spark has no transactions: a run that dies while folding leaves the snapshot half-written.
    The next run folds it again and ends exactly where DuckDB's uninterrupted runs end."""
    from activations.engine import ledger

    duck = engines["duckdb"].con
    session = engines["spark"].con.spark
    create_audience(duck)
    add_people(duck, 25)
    copy_audience(duck, session)
    sync = make_sync("webhook", name=f"cut_after_{cut_after}")
    for engine in engines.values():
        requests_post(engine.base, "/_sandbox/faults", {"destination": "webhook", "row_reject_rate": 0.2, "seed": 5})
    clients = {name: make_client(e.base, "webhook", token=TOKENS["webhook"]) for name, e in engines.items()}

    real_delete, calls = ledger.delete, []

    def dies_midway(con, table, where, params=()):
        calls.append(table)
        if len(calls) > cut_after:
            raise KeyboardInterrupt("killed while folding")
        real_delete(con, table, where, params)

    monkeypatch.setattr(ledger, "delete", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        run_sync(engines["spark"].con, sync, clients["spark"], policy=FAST_POLICY)
    monkeypatch.setattr(ledger, "delete", real_delete)
    run_sync(engines["duckdb"].con, sync, clients["duckdb"], policy=FAST_POLICY)

    for engine in engines.values():  # the Spark run recovers the cut fold first
        run_sync(engine.con, sync, clients[engine.name], policy=FAST_POLICY)
    query = {"snapshot": "select row_key, row_hash is not null, identifiers from activation.sync_snapshots "
                         "where sync_name = ?",
             "rejects": "select row_key, kind, reason, attempts from activation.sync_rejects where sync_name = ?",
             "left over": "select run_id from activation.sync_confirmations where sync_name = ? "
                          "union all select run_id from activation.sync_row_errors where sync_name = ?"}
    for name, sql in query.items():
        params = [sync.name] * sql.count("?")
        assert engines["spark"].rows(sql, params) == engines["duckdb"].rows(sql, params), name
    assert engines["spark"].rows("select status from activation.sync_runs where sync_name = ?", [sync.name]) == [
        ("crashed",), ("delivered_except_invalid",)]
    assert comparable(engines["spark"], "webhook") == comparable(engines["duckdb"], "webhook")
