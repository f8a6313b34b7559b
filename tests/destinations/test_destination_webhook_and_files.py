"""The webhook (signed JSON batches) against the sandbox, and the file export (no HTTP)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest

from activations.destinations.base import BatchPart, RetryableError
from activations.destinations.config import build_client, parse_destination
from activations.destinations.webhook import SIGNATURE_HEADER, signature

from .conftest import TOKENS
from .rows import people, prepared
from .setups import OPTIONS, batch_for

# -- webhook ----------------------------------------------------------------------------------


def test_webhook_posts_signed_rows_keyed_by_the_sync_key(sandbox):
    client = sandbox.client("webhook", **OPTIONS["webhook"])
    batch = batch_for(client, 3).with_columns(pl.lit(date(2026, 1, 2)).alias("since"))
    assert all(r.ok for r in client.send("upsert", batch))
    stored = sandbox.state("webhook")["endpoints"]["/hooks/crm"]["rows"]
    assert stored["k1"] == {
        "key": "k1",
        "email": "person1@example.com",
        "phone": "+393330000001",
        "external_id": "C00001",
        "score": 1,
        "since": "2026-01-02",
    }


def test_webhook_signature_is_hmac_sha256_of_the_exact_body(sandbox, monkeypatch):
    client = sandbox.client("webhook", **OPTIONS["webhook"])
    seen = {}
    original = client.http.request

    def spy(method, path, **kwargs):
        seen.update(kwargs)
        return original(method, path, **kwargs)

    monkeypatch.setattr(client.http, "request", spy)
    client.send("remove", batch_for(client, 1))
    expected = "sha256=" + hmac.new(TOKENS["webhook"].encode(), seen["data"], hashlib.sha256).hexdigest()
    assert seen["headers"][SIGNATURE_HEADER] == expected == signature(client.config.token, seen["data"])
    assert json.loads(seen["data"])["operation"] == "remove"
    assert "Authorization" not in client.http.session.headers  # the secret signs, it is never sent


def test_webhook_row_results_map_by_index(sandbox):
    sandbox.faults("webhook", row_reject_rate=0.3, seed=9)
    client = sandbox.client("webhook", **OPTIONS["webhook"])
    batch = batch_for(client, 30)
    results = client.send("upsert", batch)
    stored = sandbox.state("webhook")["endpoints"]["/hooks/crm"]["rows"]
    assert 0 < sum(not r.ok for r in results) < 30
    for key, result in zip(batch["_key"], results, strict=True):
        assert result.ok == (key in stored)


def test_webhook_concurrent_sends(sandbox):
    client = sandbox.client("webhook", **OPTIONS["webhook"])
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda i: client.send("upsert", batch_for(client, 50, start=i * 50)), range(8)))
    assert sum(r.ok for results in outcomes for r in results) == 400
    assert len(sandbox.state("webhook")["endpoints"]["/hooks/crm"]["rows"]) == 400


# -- file export ------------------------------------------------------------------------------


@pytest.fixture
def exporter(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTIVA_DATA", str(tmp_path))

    def make(**options):
        return build_client(
            parse_destination("crm_export", {"type": "file_export", "folder": "exports", **options}, env={})
        )

    return make


def test_file_export_writes_one_csv_per_part_atomically(exporter, tmp_path):
    client = exporter()
    assert client.capabilities.requests_per_window is None
    batch = people(3, tier=["a", "b", "c"])
    part = BatchPart(seq=2, is_last=True, total_rows=3, run_id="run 7")
    results = client.send("upsert", batch, part)
    assert all(r.ok for r in results)
    files = sorted((tmp_path / "exports").iterdir())
    assert [f.name for f in files] == ["crm_export__upsert__run_7__000002.csv"]
    written = pl.read_csv(files[0])
    assert written.columns == ["email", "phone", "external_id", "tier", "key"]
    assert written["key"].to_list() == ["k0", "k1", "k2"]
    assert results[0].destination_id == files[0].name


def test_file_export_parquet_and_distinct_names_without_parts(exporter, tmp_path):
    client = exporter(format="parquet")
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: client.send("remove", people(2, start=i * 2)), range(4)))
    files = sorted((tmp_path / "exports").glob("*.parquet"))
    assert len(files) == 4 and not list((tmp_path / "exports").glob(".*tmp"))
    assert pl.concat([pl.read_parquet(f) for f in files]).height == 8


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_file_export_erase_rewrites_every_file_without_the_person(exporter, tmp_path, file_format):
    client = exporter(format=file_format, hashing="sha256")
    client.send("upsert", prepared(client, people(3)), BatchPart(1, True, 3, "run1"))
    client.send("upsert", prepared(client, people(1, start=1)), BatchPart(1, True, 1, "run2"))  # only person 1
    erased = prepared(client, people(1, start=1)).with_columns(pl.lit(None, pl.String).alias("_key"))
    assert [r.ok for r in client.erase(erased)] == [True]  # found by the hashed email alone
    files = sorted((tmp_path / "exports").glob(f"crm_export__upsert__*.{file_format}"))
    read = pl.read_parquet if file_format == "parquet" else pl.read_csv
    assert [read(f)["key"].to_list() for f in files] == [["k0", "k2"]]  # the file holding only him is gone
    client.erase(prepared(client, people(1, start=2)))  # by key: a notice lists its SHA-256, nothing else
    [notice] = (tmp_path / "exports").glob("crm_export__erase__*.csv")
    assert pl.read_csv(notice).to_dict(as_series=False) == {"key_sha256": [hashlib.sha256(b"k2").hexdigest()]}


def test_file_export_unwritable_folder_is_retryable(exporter, tmp_path):
    (tmp_path / "exports").write_text("a file where the folder should be")
    with pytest.raises(RetryableError):
        exporter().send("upsert", people(1))


class Counting(BaseHTTPRequestHandler):
    """A receiver answering `Prefer: return=minimal` with a count of its own choosing."""

    seen: list[tuple[str | None, int]] = []
    accepted = staticmethod(lambda rows: rows)

    def do_POST(self):  # noqa: N802 (http.server's spelling)
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["rows"]
        Counting.seen.append((self.headers.get("Prefer"), len(rows)))
        body = json.dumps({"accepted": Counting.accepted(len(rows))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return None


@pytest.mark.parametrize("count, confirmed", [(lambda n: n, True), (lambda n: n - 1, False), (lambda n: True, False)])
def test_webhook_minimal_answer_confirms_only_the_whole_batch(count, confirmed):
    Counting.seen, Counting.accepted = [], count
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = build_client(parse_destination("hook", {"type": "webhook", "path": "/in"}, env={
            "ATTIVA_HOOK_URL": f"http://127.0.0.1:{server.server_port}", "ATTIVA_HOOK_TOKEN": "s3cret"}))
        batch = pl.DataFrame({"_key": ["a", "b", "c"], "email": ["a@example.com", "b@example.com", "c@example.com"]})
        if confirmed:
            assert [r.ok for r in client.send("upsert", batch)] == [True, True, True]
        else:  # a count that is not the batch's says nothing about which rows: sent again
            with pytest.raises(RetryableError, match="accepts .* rows of 3 sent"):
                client.send("upsert", batch)
        assert Counting.seen == [("return=minimal", 3)]
        client.close()
    finally:
        server.shutdown()
        server.server_close()
