"""Ingestion of landing files into raw tables: types, quarantine, failures, increments, line numbers."""

from __future__ import annotations

import gzip
import json
import os
import random
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from activations import cli
from activations.ingest import load as load_module
from activations.ingest import load_landing, quotes
from activations.ingest.contract import SOURCES_BY_NAME

CONTACT_HEADER = ",".join(SOURCES_BY_NAME["crm_contacts"].column_names)


def contact(contact_id: str, **values: str) -> str:
    """A crm_contacts CSV line with sensible defaults for the required fields."""
    row = {name: "" for name in SOURCES_BY_NAME["crm_contacts"].column_names}
    row.update(contact_id=contact_id, created_at="2024-01-01T00:00:00Z", updated_at="2024-01-02T00:00:00Z")
    row.update(values)
    return ",".join(row.values())


def event(event_id: str, **values: object) -> str:
    return json.dumps({"event_id": event_id, "event_type": "page_view", "occurred_at": "2024-05-01T10:00:00Z"} | values)


def write(landing: Path, name: str, text: str | bytes) -> Path:
    path = landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows(warehouse: Path, sql: str, params: list[object] | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def test_good_rows_load_with_contract_types_and_utc_timestamps(landing: Path, warehouse: Path) -> None:
    write(
        landing,
        "crm/contacts/2024-05-01.csv",
        "\n".join(
            [
                CONTACT_HEADER,
                contact("C1", birth_date="1990-02-28", created_at="2024-05-01T10:00:00Z"),
                contact("C2", created_at="2024-05-01T10:00:00+02:00", updated_at="2024-05-01 10:00:00"),
                contact("C3", created_at="2024-05-01", birth_date="", email="c3@example.com"),
            ]
        )
        + "\n",
    )
    report = load_landing(landing, warehouse)

    assert report.rows_loaded == 3 and report.rows_quarantined == 0 and not report.failed_files
    assert rows(
        warehouse, "select contact_id, birth_date, created_at, updated_at, email from raw.crm_contacts order by 1"
    ) == [
        ("C1", date(1990, 2, 28), datetime(2024, 5, 1, 10), datetime(2024, 1, 2), None),
        ("C2", None, datetime(2024, 5, 1, 8), datetime(2024, 5, 1, 10), None),
        ("C3", None, datetime(2024, 5, 1), datetime(2024, 1, 2), "c3@example.com"),
    ]
    types = dict(
        rows(
            warehouse,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'crm_contacts'",
        )
    )
    assert types["birth_date"] == "DATE" and types["created_at"] == "TIMESTAMP" and types["email"] == "VARCHAR"
    assert types["_line"] == "BIGINT" and types["_ingested_at"] == "TIMESTAMP"
    assert rows(warehouse, "select _file, _line from raw.crm_contacts order by _line") == [
        ("crm/contacts/2024-05-01.csv", 2),
        ("crm/contacts/2024-05-01.csv", 3),
        ("crm/contacts/2024-05-01.csv", 4),
    ]
    assert rows(warehouse, "select count(distinct _ingested_at) from raw.crm_contacts") == [(1,)]


def test_typed_values_booleans_numbers_and_column_order(landing: Path, warehouse: Path) -> None:
    # Columns in another order and case, an extra column, an optional column (brand) missing.
    write(
        landing,
        "shop/products/p.csv",
        "PRICE,product_id,name,category,is_active,updated_at,notes\n"
        "12.5,P1,Mug,home,YES,2024-01-01T00:00:00Z,x\n"
        "3,P2,Cup,home,0,2024-01-01T00:00:00Z,x\n"
        "1e2,P3,Pot,home,False,2024-01-01T00:00:00Z,x\n"
        "9,P4,Pan,home,maybe,2024-01-01T00:00:00Z,x\n"
        "1,5,P5,Jar,home,,2024-01-01T00:00:00Z,x\n"
        "7,P6,Lid,home,,2024-01-01T00:00:00Z,x\n",
    )
    write(
        landing,
        "shop/order_items/i.csv",
        "order_item_id,order_id,product_id,quantity,unit_price\nI1,O1,P1,2,1.5\nI2,O1,P1,1.5,1\nI3,O1,P1, 3 ,1\n",
    )
    report = load_landing(landing, warehouse)

    assert rows(warehouse, "select product_id, price, is_active, brand from raw.shop_products order by 1") == [
        ("P1", 12.5, True, None),
        ("P2", 3.0, False, None),
        ("P3", 100.0, False, None),
        ("P6", 7.0, None, None),
    ]
    assert rows(warehouse, "select order_item_id, quantity from raw.shop_order_items order by 1") == [
        ("I1", 2),
        ("I3", 3),
    ]
    reasons = {(p.file, p.line): p.reason for p in report.problems}
    assert reasons[("shop/products/p.csv", 5)] == (
        "field is_active: 'maybe' is not a boolean (expected true/false, 1/0 or yes/no)"
    )
    assert reasons[("shop/products/p.csv", 6)] == "expected 7 fields, found 8"
    assert reasons[("shop/order_items/i.csv", 3)] == "field quantity: '1.5' is not a whole number"


def test_bad_rows_are_quarantined_and_the_good_rows_of_the_file_load(landing: Path, warehouse: Path) -> None:
    write(
        landing,
        "crm/contacts/c.csv",
        "\n".join(
            [
                CONTACT_HEADER,
                contact("C1"),
                contact("C2", birth_date="31/02/2024"),
                contact("C3")[: contact("C3").rindex(",")],  # one field short
                contact(""),
                contact("C5", created_at="not a time"),
            ]
        )
        + "\n",
    )
    write(
        landing,
        "events/e.jsonl",
        "\n".join([event("E1"), '{"event_id": "E2", "event_type": ', event("E3"), "[1, 2]", event("E5", quantity="x")])
        + "\n",
    )
    report = load_landing(landing, warehouse)

    assert rows(warehouse, "select contact_id, _line from raw.crm_contacts") == [("C1", 2)]
    assert rows(warehouse, "select event_id, _line from raw.events order by _line") == [("E1", 1), ("E3", 3)]
    quarantine = rows(
        warehouse, "select file, source, line, field, reason, record from raw.quarantine order by file, line"
    )
    assert [q[:5] for q in quarantine] == [
        (
            "crm/contacts/c.csv",
            "crm_contacts",
            3,
            "birth_date",
            "field birth_date: '31/02/2024' is not a date (expected YYYY-MM-DD)",
        ),
        ("crm/contacts/c.csv", "crm_contacts", 4, None, "expected 19 fields, found 18"),
        ("crm/contacts/c.csv", "crm_contacts", 5, "contact_id", "required field contact_id is empty"),
        (
            "crm/contacts/c.csv",
            "crm_contacts",
            6,
            "created_at",
            "field created_at: 'not a time' is not a timestamp (expected ISO 8601, e.g. 2024-05-01T10:00:00Z)",
        ),
        ("events/e.jsonl", "events", 2, None, "line is not valid JSON"),
        ("events/e.jsonl", "events", 4, None, "line is not a JSON object"),
        ("events/e.jsonl", "events", 5, "quantity", "field quantity: 'x' is not a whole number"),
    ]
    records = {(q[0], q[2]): q[5] for q in quarantine}
    assert records[("crm/contacts/c.csv", 3)] == contact("C2", birth_date="31/02/2024")
    assert records[("crm/contacts/c.csv", 4)] == contact("C3")[: contact("C3").rindex(",")]
    assert records[("events/e.jsonl", 2)] == '{"event_id": "E2", "event_type": '
    assert (report.rows_loaded, report.rows_quarantined) == (3, 7)
    assert not report.failed_files
    text = str(report)
    assert "3 rows loaded, 7 quarantined" in text
    assert "crm/contacts/c.csv:3: field birth_date: '31/02/2024' is not a date" in text


def test_a_record_with_several_problems_gets_one_quarantine_row_each(landing: Path, warehouse: Path) -> None:
    write(landing, "crm/contacts/c.csv", CONTACT_HEADER + "\n" + contact("", birth_date="x", updated_at="") + "\n")
    load_landing(landing, warehouse)

    assert rows(warehouse, "select line, field from raw.quarantine order by field") == [
        (2, "birth_date"),
        (2, "contact_id"),
        (2, "updated_at"),
    ]
    assert rows(warehouse, "select rows_loaded, rows_quarantined from raw.landing_files") == [(0, 1)]


def test_unreadable_files_are_reported_by_name_and_do_not_stop_the_others(
    landing: Path, warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(landing, "crm/contacts/empty.csv", "")
    write(landing, "crm/contacts/binary.csv", bytes(range(256)) * 4)
    write(landing, "crm/contacts/no_updated_at.csv", "contact_id,created_at\nC9,2024-01-01\n")
    write(landing, "crm/contacts/no_header.csv", contact("C8") + "\n")
    write(landing, "events/not-json.jsonl", "\n\n")
    write(landing, "events/array.jsonl", json.dumps([json.loads(event("E7"))], indent=2))
    write(landing, "events/broken.jsonl.gz", b"not gzip at all")
    write(landing, "shop/products/fake.parquet", "product_id,name\nP1,x\n")
    write(landing, "crm/contacts/good.csv", CONTACT_HEADER + "\n" + contact("C1") + "\n")
    write(landing, "events/good.jsonl", event("E1") + "\n")
    write(landing, "misc/readme.txt", "hello")
    write(landing, "crm/contacts/notes.txt", "hello")
    write(landing, "_truth/contacts.csv", "anything")
    write(landing, "crm/contacts/.hidden.csv", "anything")

    report = load_landing(landing, warehouse)

    failed = {f.file: f.error for f in report.failed_files}
    assert failed == {
        "crm/contacts/binary.csv": "file is binary, not UTF-8 text",
        "crm/contacts/empty.csv": "file is empty",
        "crm/contacts/no_header.csv": failed["crm/contacts/no_header.csv"],
        "crm/contacts/no_updated_at.csv": "missing required column: updated_at",
        "events/broken.jsonl.gz": failed["events/broken.jsonl.gz"],
        "events/not-json.jsonl": "file is empty",
        "events/array.jsonl": "no line is a JSON object: expected JSON lines, one object per line",
        "shop/products/fake.parquet": failed["shop/products/fake.parquet"],
    }
    assert failed["shop/products/fake.parquet"].startswith("not a readable Parquet file")
    assert "no header row" in failed["crm/contacts/no_header.csv"]
    assert failed["events/broken.jsonl.gz"].startswith("not a readable gzip file")
    assert {f.file for f in report.skipped_files} == {"misc/readme.txt", "crm/contacts/notes.txt"}
    assert rows(warehouse, "select contact_id from raw.crm_contacts") == [("C1",)]
    assert rows(warehouse, "select event_id from raw.events") == [("E1",)]
    ledger = dict(rows(warehouse, "select file, status from raw.landing_files"))
    assert ledger["crm/contacts/empty.csv"] == "failed" and ledger["crm/contacts/good.csv"] == "loaded"
    assert ledger["misc/readme.txt"] == "skipped" and "_truth/contacts.csv" not in ledger

    # The CLI prints the report and exits 1 while a file fails.
    assert cli.main(["ingest", "--landing", str(landing), "--warehouse", str(warehouse)]) == 1
    printed = capsys.readouterr().out
    assert "crm/contacts/binary.csv: file is binary, not UTF-8 text" in printed
    assert "8 failed" in printed


def test_a_second_load_loads_nothing_new(landing: Path, warehouse: Path) -> None:
    csv_path = write(landing, "crm/contacts/c.csv", CONTACT_HEADER + "\n" + contact("C1") + "\n" + contact("C2") + "\n")
    write(landing, "events/e.jsonl", event("E1") + "\n")
    first = load_landing(landing, warehouse)
    assert [f.status for f in first.files] == ["loaded", "loaded"]

    second = load_landing(landing, warehouse)
    assert [f.status for f in second.files] == ["unchanged", "unchanged"]
    assert second.rows_loaded == 0
    assert "0 file(s)" in str(second) and "2 unchanged" in str(second)

    # Touched but not changed: hashed, found identical, still not loaded again.
    os.utime(csv_path, (1_700_000_000, 1_700_000_000))
    third = load_landing(landing, warehouse)
    assert [f.status for f in third.files] == ["unchanged", "unchanged"]
    assert rows(warehouse, "select count(*) from raw.crm_contacts") == [(2,)]
    assert rows(warehouse, "select modified_at from raw.landing_files where file = 'crm/contacts/c.csv'") == [
        (datetime(2023, 11, 14, 22, 13, 20),)
    ]


def test_a_changed_file_replaces_its_rows(landing: Path, warehouse: Path) -> None:
    path = write(
        landing,
        "crm/contacts/c.csv",
        "\n".join([CONTACT_HEADER, contact("C1"), contact("C2", birth_date="bad"), contact("C3")]) + "\n",
    )
    write(landing, "crm/contacts/other.csv", CONTACT_HEADER + "\n" + contact("C9") + "\n")
    load_landing(landing, warehouse)
    assert rows(warehouse, "select count(*) from raw.crm_contacts") == [(3,)]

    path.write_text("\n".join([CONTACT_HEADER, contact("C1", email="new@example.com"), contact("C4")]) + "\n")
    report = load_landing(landing, warehouse)

    assert {f.file: f.status for f in report.files} == {
        "crm/contacts/c.csv": "replaced",
        "crm/contacts/other.csv": "unchanged",
    }
    assert rows(warehouse, "select contact_id, email, _line from raw.crm_contacts order by 1") == [
        ("C1", "new@example.com", 2),
        ("C4", None, 3),
        ("C9", None, 2),
    ]
    assert rows(warehouse, "select count(*) from raw.quarantine") == [(0,)]
    assert rows(warehouse, "select rows_loaded, status from raw.landing_files where file = 'crm/contacts/c.csv'") == [
        (2, "loaded")
    ]


def test_a_failure_inside_a_file_load_leaves_nothing_of_it(
    landing: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        landing,
        "crm/contacts/c.csv",
        CONTACT_HEADER + "\n" + contact("C1") + "\n" + contact("C2", birth_date="x") + "\n",
    )

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # e.g. the process is stopped after the rows were inserted

    monkeypatch.setattr(load_module.ledger, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        load_landing(landing, warehouse)
    assert rows(warehouse, "select count(*) from raw.crm_contacts") == [(0,)]
    assert rows(warehouse, "select count(*) from raw.quarantine") == [(0,)]

    monkeypatch.undo()
    report = load_landing(landing, warehouse)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)


def test_parquet_and_gzipped_csv_load(landing: Path, warehouse: Path) -> None:
    (landing / "shop/products").mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"""
            copy (
                select 'P' || i as product_id, 'Item ' || i as name, 'home' as category, i * 1.5 as price,
                       i % 2 = 0 as is_active, timestamp '2024-01-01 10:00:00' + to_hours(i) as updated_at,
                       'ignored' as extra
                from range(1, 4) t(i)
            ) to '{landing / "shop/products/products.parquet"}' (format parquet)
        """)
    with gzip.open(landing / "shop/orders.csv.gz", "wt") as stream:  # a file outside any source folder
        stream.write("x\n")
    (landing / "shop/orders").mkdir(parents=True)
    with gzip.open(landing / "shop/orders/o.csv.gz", "wt") as stream:
        stream.write("order_id,ordered_at,status,total_amount\nO1,2024-05-01T10:00:00Z,completed,10\n\n")
        stream.write("O2,2024-05-01,completed,abc\nO3,2024-05-02T00:00:00-01:00,refunded,5.5\n")

    report = load_landing(landing, warehouse)

    assert rows(
        warehouse, "select product_id, price, is_active, updated_at, _line from raw.shop_products order by 1"
    ) == [
        ("P1", 1.5, False, datetime(2024, 1, 1, 11), 1),
        ("P2", 3.0, True, datetime(2024, 1, 1, 12), 2),
        ("P3", 4.5, False, datetime(2024, 1, 1, 13), 3),
    ]
    assert rows(warehouse, "select order_id, ordered_at, total_amount, _line from raw.shop_orders order by 1") == [
        ("O1", datetime(2024, 5, 1, 10), 10.0, 2),
        ("O3", datetime(2024, 5, 2, 1), 5.5, 5),
    ]
    assert [(p.file, p.line) for p in report.problems] == [("shop/orders/o.csv.gz", 4)]
    assert [f.file for f in report.skipped_files] == ["shop/orders.csv.gz"]


def test_ingested_at_increases_between_loads(landing: Path, warehouse: Path) -> None:
    write(landing, "events/1.jsonl", event("E1") + "\n")
    first = load_landing(landing, warehouse)
    write(landing, "events/2.jsonl", event("E2") + "\n")
    second = load_landing(landing, warehouse)

    assert second.ingested_at > first.ingested_at
    stamps = dict(rows(warehouse, "select event_id, _ingested_at from raw.events"))
    assert stamps == {"E1": first.ingested_at, "E2": second.ingested_at}
    assert rows(warehouse, "select max(ingested_at) from raw.landing_files") == [(second.ingested_at,)]


def _random_csv(rng: random.Random, blank_lines: bool) -> tuple[str, dict[str, int], dict[int, str]]:
    """A contacts file mixing plain rows, multi-line values, bad rows and (maybe) blank lines.

    Returns the text, the line of every good contact and the expected reason at every bad line.
    """
    out = [CONTACT_HEADER]
    good: dict[str, int] = {}
    bad: dict[int, str] = {}
    for n in range(rng.randint(20, 80)):
        line = len("\n".join(out).split("\n")) + 1
        kind = rng.choice(
            ["plain"] * 5 + ["multiline", "short", "long", "bad_date"] + (["blank"] * 2 if blank_lines else [])
        )
        cid = f"C{n}"
        if kind == "plain":
            out.append(contact(cid))
            good[cid] = line
        elif kind == "multiline":
            city = "\n".join(["x"] * rng.randint(2, 4))
            out.append(contact(cid, city=f'"{city}"', job_title='"a, ""b"""'))
            good[cid] = line
        elif kind == "short":
            out.append(f"{cid},x")
            bad[line] = "expected 19 fields, found 2"
        elif kind == "long":
            out.append(contact(cid, city='"two\nlines"') + ",extra")
            bad[line] = "expected 19 fields, found 20"
        elif kind == "bad_date":
            out.append(contact(cid, birth_date="2024-13-01", city='"a\nb"'))
            bad[line] = "field birth_date: '2024-13-01' is not a date (expected YYYY-MM-DD)"
        else:
            out.append("")
    return "\n".join(out) + "\n" * rng.randint(1, 3), good, bad


@pytest.mark.parametrize("blank_lines", [False, True])
def test_line_numbers_are_file_lines_despite_multiline_values_rejects_and_blank_lines(
    landing: Path, warehouse: Path, blank_lines: bool
) -> None:
    rng = random.Random(7 + blank_lines)
    expected_good: dict[tuple[str, str], int] = {}
    expected_bad: dict[tuple[str, int], str] = {}
    for i in range(6):
        text, good, bad = _random_csv(rng, blank_lines)
        name = f"crm/contacts/{i}.csv"
        write(landing, name, text)
        expected_good |= {(name, cid): line for cid, line in good.items()}
        expected_bad |= {(name, line): reason for line, reason in bad.items()}

    load_landing(landing, warehouse)

    loaded = rows(warehouse, "select _file, contact_id, _line from raw.crm_contacts")
    assert {(f, c): line for f, c, line in loaded} == expected_good
    quarantined = rows(warehouse, "select file, line, reason from raw.quarantine")
    assert {(f, line): reason for f, line, reason in quarantined} == expected_bad


def test_json_lines_with_blank_lines_crlf_and_undecodable_lines(landing: Path, warehouse: Path) -> None:
    lines = [event("E1"), "", "   ", event("E2", url="café"), "\x01" + event("E3"), event("E4"), "", event("E5")]
    data = "\r\n".join(lines).encode().replace(b'"E4"', b'"E4\xff"') + b"\r\n"
    write(landing, "events/e.ndjson", data)
    report = load_landing(landing, warehouse)

    assert rows(warehouse, "select event_id, url, _line from raw.events order by _line") == [
        ("E1", None, 1),
        ("E2", "café", 4),
        ("E5", None, 8),
    ]
    assert [(p.line, p.reason) for p in report.problems] == [
        (5, "line is not valid JSON"),
        (6, "line is not valid UTF-8 text"),
    ]


def test_blank_values_in_typed_columns_are_null(landing: Path, warehouse: Path) -> None:
    write(
        landing,
        "crm/contacts/c.csv",
        CONTACT_HEADER
        + "\n"
        + contact("C1", birth_date="  ", became_lead_at='""')
        + "\n"
        + contact("C2", created_at="  ")
        + "\n",
    )
    report = load_landing(landing, warehouse)

    assert rows(warehouse, "select contact_id, birth_date, became_lead_at from raw.crm_contacts") == [
        ("C1", None, None)
    ]
    assert [(p.line, p.reason) for p in report.problems] == [(3, "required field created_at is empty")]


def test_symlinks_are_skipped_and_reported_and_a_dangling_one_does_not_stop_the_load(
    landing: Path, warehouse: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(CONTACT_HEADER + "\n" + contact("SECRET") + "\n")
    (landing / "crm/contacts").mkdir(parents=True)
    (landing / "crm/contacts/linked.csv").symlink_to(outside / "secret.csv")
    (landing / "crm/contacts/dangling.csv").symlink_to(tmp_path / "gone.csv")
    (landing / "crm/contacts/more").symlink_to(outside, target_is_directory=True)
    os.mkfifo(landing / "crm/contacts/pipe.csv")  # would block a reader forever
    write(landing, "crm/contacts/good.csv", CONTACT_HEADER + "\n" + contact("C1") + "\n")

    report = load_landing(landing, warehouse)

    assert rows(warehouse, "select contact_id from raw.crm_contacts") == [("C1",)]
    skipped = {f.file: f.error for f in report.skipped_files}
    assert skipped == {
        "crm/contacts/dangling.csv": "a symbolic link: not read (landing files must be regular files in the folder)",
        "crm/contacts/linked.csv": "a symbolic link: not read (landing files must be regular files in the folder)",
        "crm/contacts/more": "a symbolic link: not read (landing files must be regular files in the folder)",
        "crm/contacts/pipe.csv": "not a regular file: not read",
    }
    assert not report.failed_files
    assert "crm/contacts/linked.csv: a symbolic link" in str(report)
    assert load_landing(landing, warehouse).rows_loaded == 0  # the next load is just as quiet


def test_a_file_is_read_by_its_exact_name_even_when_it_looks_like_a_pattern(landing: Path, warehouse: Path) -> None:
    for name, cid in [
        ("*.csv", "STAR"),
        ("a.csv", "A"),
        ("b?.csv", "QUESTION"),
        ("bb.csv", "B"),
        ("c[1].csv", "BRACKET"),
        ("c1.csv", "C"),
    ]:
        write(landing, f"crm/contacts/{name}", CONTACT_HEADER + "\n" + contact(cid) + "\n")
    write(landing, "events/[*].jsonl", event("E1") + "\n")
    write(landing, "events/x.jsonl", event("E2") + "\n")

    report = load_landing(landing, warehouse)

    assert not report.failed_files
    assert rows(warehouse, "select _file, contact_id from raw.crm_contacts order by 1") == [
        ("crm/contacts/*.csv", "STAR"),
        ("crm/contacts/a.csv", "A"),
        ("crm/contacts/b?.csv", "QUESTION"),
        ("crm/contacts/bb.csv", "B"),
        ("crm/contacts/c1.csv", "C"),
        ("crm/contacts/c[1].csv", "BRACKET"),
    ]
    assert rows(warehouse, "select _file, event_id from raw.events order by 1") == [
        ("events/[*].jsonl", "E1"),
        ("events/x.jsonl", "E2"),
    ]


def test_values_outside_the_declared_vocabulary_or_range_are_quarantined_and_codes_take_any_case(
    landing: Path, warehouse: Path
) -> None:
    write(
        landing,
        "shop/orders/o.csv",
        "order_id,ordered_at,status,total_amount,channel\n"
        "O1,2024-05-01T10:00:00Z,completed,10,web\n"
        "O2,2024-05-01T10:00:00Z,SHIPPED,10,web\n"
        "O3,2024-05-01T10:00:00Z,completed,-5,web\n"
        "O4,2024-05-01T10:00:00Z,completed,10,fax\n"
        "O5,2024-05-01T10:00:00Z, Refunded ,0,STORE\n"
        "O6,2024-05-01T10:00:00Z,  ,abc,\n",
    )
    write(
        landing,
        "shop/promotions/p.csv",
        "promotion_id,product_id,discount_pct,starts_at,ends_at\n"
        "PR1,P1,100,2024-01-01,2024-02-01\nPR2,P1,150,2024-01-01,2024-02-01\n",
    )
    write(landing, "shop/order_items/i.csv", "order_item_id,order_id,product_id,quantity,unit_price\nI1,O1,P1,0,1\n")
    write(
        landing,
        "crm/contacts/c.csv",
        "\n".join([CONTACT_HEADER, contact("C1", country=" it"), contact("C2", country="Italy", lifecycle_stage="MQL")])
        + "\n",
    )
    write(
        landing,
        "events/e.jsonl",
        "\n".join([event("E1", event_type="Page_View"), event("E2", event_type="pageview"), event("E3", quantity=0)])
        + "\n",
    )
    write(
        landing,
        "consent/c.csv",
        "consent_id,email,channel,status,recorded_at\nK1,a@x.it,Email,GRANTED,2024-01-01\nK2,a@x.it,fax,granted,2024-01-01\n",
    )
    write(
        landing,
        "email_engagement/e.csv",
        "engagement_id,email,event_type,occurred_at,bounce_type\nM1,a@x.it,Bounce,2024-01-01,HARD\n"
        "M2,a@x.it,bounce,2024-01-01,medium\n",
    )

    load_landing(landing, warehouse)

    assert rows(warehouse, "select order_id, status, total_amount, channel from raw.shop_orders order by 1") == [
        ("O1", "completed", 10.0, "web"),
        ("O5", "refunded", 0.0, "store"),
    ]
    assert rows(warehouse, "select promotion_id from raw.shop_promotions") == [("PR1",)]
    assert rows(warehouse, "select contact_id, country from raw.crm_contacts") == [("C1", "IT")]
    assert rows(warehouse, "select event_id, event_type from raw.events") == [("E1", "page_view")]
    assert rows(warehouse, "select consent_id, channel, status from raw.consent") == [("K1", "email", "granted")]
    assert rows(warehouse, "select event_type, bounce_type from raw.email_engagement") == [("bounce", "hard")]
    assert rows(warehouse, "select file, line, field, reason from raw.quarantine order by file, line, field") == [
        ("consent/c.csv", 3, "channel", "field channel: 'fax' is not one of email, sms, push, ads, profiling"),
        (
            "crm/contacts/c.csv",
            3,
            "country",
            "field country: 'Italy' is not a two-letter country code (ISO 3166 alpha-2, e.g. IT)",
        ),
        (
            "email_engagement/e.csv",
            3,
            "bounce_type",
            "field bounce_type: 'medium' is not one of hard, soft",
        ),
        (
            "events/e.jsonl",
            2,
            "event_type",
            "field event_type: 'pageview' is not one of page_view, product_view, add_to_cart, "
            "checkout_started, identify, login, form_submit, app_open, message_displayed, message_clicked, "
            "message_dismissed",
        ),
        ("events/e.jsonl", 3, "quantity", "field quantity: '0' is not at least 1"),
        ("shop/order_items/i.csv", 2, "quantity", "field quantity: '0' is not at least 1"),
        ("shop/orders/o.csv", 3, "status", "field status: 'SHIPPED' is not one of completed, cancelled, refunded"),
        ("shop/orders/o.csv", 4, "total_amount", "field total_amount: '-5' is not at least 0"),
        ("shop/orders/o.csv", 5, "channel", "field channel: 'fax' is not one of web, app, store"),
        ("shop/orders/o.csv", 7, "status", "required field status is empty"),
        ("shop/orders/o.csv", 7, "total_amount", "field total_amount: 'abc' is not a number (expected e.g. 12.5)"),
        ("shop/promotions/p.csv", 3, "discount_pct", "field discount_pct: '150' is not between 0 and 100"),
    ]


@pytest.mark.parametrize("chunk", [None, 7])  # 7 bytes: lines and quoted values cross the walk's chunks
def test_an_unclosed_quote_is_reported_on_its_own_line_and_the_rows_after_it_load(
    landing: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk:
        monkeypatch.setattr(quotes, "_CHUNK", chunk)
    at = "2024-05-01T10:00:00Z"
    lines = [
        "order_id,ordered_at,status,total_amount,channel,utm_campaign",
        f"O1,{at},completed,10,web,",
        f'O9,{at},completed,10,web,"spring',  # a quoted value over two lines: one record
        'sale"',
        f'O2,{at},"completed,10,web,',  # the quote is never closed on its line...
        f"O3,{at},completed,10,web,",
        f"O4,{at},completed,10,web,",
        f'O5,{at},completed",10,web,',  # ...a stray quote further down closes it
        f"O6,{at},completed,10,web,",
        f'O7,{at},"completed,10,web,',  # open until the end of the file
        f"O8,{at},completed,10,web,",
    ]
    write(landing, "shop/orders/o.csv", "\n".join(lines) + "\n")
    tail = [f"X{i},{at},completed,{i},web," for i in range(500)]
    with gzip.open(landing / "shop/orders/long.csv.gz", "wt") as stream:
        stream.write("\n".join([lines[0], f'X-open,{at},completed,"1,web,', *tail]) + "\n")

    report = load_landing(landing, warehouse)

    assert rows(
        warehouse,
        "select order_id, _line, utm_campaign from raw.shop_orders where _file = 'shop/orders/o.csv' order by _line",
    ) == [
        ("O1", 2, None),
        ("O9", 3, "spring\nsale"),
        ("O3", 6, None),
        ("O4", 7, None),
        ("O6", 9, None),
        ("O8", 11, None),
    ]
    assert rows(
        warehouse, "select line, reason, record from raw.quarantine where file = 'shop/orders/o.csv' order by line"
    ) == [
        (5, "misplaced quote: the quoted value opened on this line is not closed on it", lines[4]),
        (8, "misplaced quote: this line closes a quoted value opened on line 5", lines[7]),
        (10, "misplaced quote: the quoted value opened on this line is not closed on it", lines[9]),
    ]
    long = rows(warehouse, "select min(_line), max(_line), count(*) from raw.shop_orders where _file like '%long%'")
    assert long == [(3, 502, 500)]
    assert rows(warehouse, "select line from raw.quarantine where file = 'shop/orders/long.csv.gz'") == [(2,)]
    assert {f.file: (f.rows_loaded, f.rows_quarantined) for f in report.files} == {
        "shop/orders/long.csv.gz": (500, 1),
        "shop/orders/o.csv": (6, 3),
    }

    # The file fixed and dropped again: its rows and quarantine are replaced.
    fixed = [line.replace('"', "") if i in (4, 7, 9) else line for i, line in enumerate(lines)]
    write(landing, "shop/orders/o.csv", "\n".join(fixed) + "\n")
    again = load_landing(landing, warehouse)
    assert {f.file: f.status for f in again.files} == {
        "shop/orders/long.csv.gz": "unchanged",
        "shop/orders/o.csv": "replaced",
    }
    assert rows(warehouse, "select count(*) from raw.shop_orders where _file = 'shop/orders/o.csv'") == [(9,)]
    assert rows(warehouse, "select line from raw.quarantine where file = 'shop/orders/o.csv'") == []


def _load_everything(landing: Path, warehouse: Path) -> tuple[list, list, list, list]:
    report = load_landing(landing, warehouse)
    outcome = sorted((f.file, f.status, f.rows_loaded, f.rows_quarantined, f.error, tuple(f.problems))
                     for f in report.files)
    return (outcome,
            rows(warehouse, "select * exclude (_ingested_at) from raw.events order by _file, _line"),
            rows(warehouse, "select * exclude (ingested_at) from raw.quarantine order by file, line, field"),
            rows(warehouse, "select * exclude (ingested_at) from raw.landing_files order by file"))


def test_many_small_json_lines_files_load_as_one_exactly_as_each_alone(tmp_path: Path, monkeypatch) -> None:
    """The collector writes a file per request: new small JSON-lines files of a source are staged as one
    (ingest/groups.py), and every row, problem, line number and ledger entry is what loading each alone gives."""
    from activations.ingest import groups

    landing = tmp_path / "landing"
    files = {f"events/api/2026-12-07/{i:03d}.jsonl": "".join(event(f"E{i}-{j}") + "\n" for j in range(3))
             for i in range(40)}
    files.update({
        "events/api/2026-12-07/050-messy.jsonl": "\n".join(
            [event("M1"), "", "not json", event("M2", occurred_at="yesterday"), '["an", "array"]', event("M3")]),
        "events/api/2026-12-07/050-windows.jsonl": event("W1") + "\r\n" + event("W2") + "\r\n",
        "events/api/2026-12-07/051-no-final-break.jsonl": event("N1") + "\n" + event("N2"),
        "events/api/2026-12-07/052-undecodable.jsonl": (event("U1") + "\n").encode() + b'{"event_id": "\xff"}\n'
                                                        + (event("U2") + "\n").encode(),
        "events/api/2026-12-07/053-blank.jsonl": "\n\n",  # alone: "file is empty"
        "events/api/2026-12-07/054-array.jsonl": json.dumps([1, 2], indent=2),  # alone: "no line is a JSON object"
        "events/api/2026-12-07/055-bom.jsonl": "\ufeff" + event("B1") + "\n",
        "events/api/2026-12-07/056.jsonl.gz": gzip.compress((event("G1") + "\n").encode()),
        "events/api/2026-12-07/057.jsonl": event("A1") + "\n" + event("A2") + "\n",
        "events/api/2026-12-07/058.jsonl": event("A3") + "\n",
    })
    for name, text in files.items():
        write(landing, name, text)

    inserted_groups = []
    insert_group = load_module._insert_group
    monkeypatch.setattr(load_module, "_insert_group", lambda con, joined, *a: inserted_groups.append(
        len(joined.files)) or insert_group(con, joined, *a))
    grouped = _load_everything(landing, tmp_path / "grouped.duckdb")
    # 000-055 as one group, less the CRLF file, the blank file, the array and the BOM, which load alone;
    # the gzipped file breaks the run; 057-058 as one.
    assert inserted_groups == [43, 2]
    monkeypatch.setattr(groups, "SMALL_FILE_BYTES", 0)  # every file alone, as before grouping
    alone = _load_everything(landing, tmp_path / "alone.duckdb")

    assert grouped == alone
    outcome, events, quarantine, _ = grouped
    assert len(events) == 40 * 3 + 13 and ("E7-2",) == events[7 * 3 + 2][:1]
    failed = {f: e for f, s, *_, e, _ in outcome if s == "failed"}
    assert failed == {"events/api/2026-12-07/053-blank.jsonl": "file is empty",
                      "events/api/2026-12-07/054-array.jsonl": "no line is a JSON object: expected JSON lines, "
                                                                "one object per line"}
    messy = [(line, field) for file, _, line, field, *_ in quarantine if file.endswith("050-messy.jsonl")]
    assert messy == [(3, None), (4, "occurred_at"), (5, None)]
    assert [e[0] for e in events if e[-2].endswith("051-no-final-break.jsonl")] == ["N1", "N2"]

    # A second load: nothing new, grouped or not.
    again = load_landing(landing, tmp_path / "grouped.duckdb")
    assert not sum(f.rows_loaded for f in again.files)
