"""`attiva listen` against the local sandbox's feeds over loopback HTTP: RSS and Atom items land as one
`listening/mentions` file that ingestion takes whole; a broken feed and an unreachable one are named and
fail the command without stopping the others."""

from __future__ import annotations

import json
import socket

import duckdb

from activations.cli import main
from activations.ingest import load_landing
from sandbox.server import running_sandbox


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listen_lands_every_good_feed_and_names_the_bad_ones(tmp_path, capsys):
    landing, config = tmp_path / "landing", tmp_path / "listening.yml"
    with running_sandbox(tmp_path / "sandbox") as url:
        config.write_text(f"""brand: {{name: Casa Lume}}
feeds:
  - {url}/listening/feeds/broken.xml
  - {url}/listening/feeds/news.rss
  - http://127.0.0.1:{closed_port()}/feed.rss
  - {{url: "{url}/listening/feeds/blog.atom", kind: blog, name: Diario}}
""")
        code = main(["listen", "--config", str(config), "--landing", str(landing)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "9 mention(s) landed" in out and "2 failed" in out, out
    assert "broken.xml: FAILED: not XML" in out and "feed.rss: FAILED: unreachable" in out, out

    files = list((landing / "listening" / "mentions").rglob("*.jsonl"))
    assert len(files) == 1
    rows = {r["mention_id"]: r for r in map(json.loads, files[0].read_text().splitlines())}
    assert len(rows) == 9
    news = rows["news-101"]
    assert news["source_kind"] == "news" and news["source_name"] == "Notizie Casa & Design"
    assert news["url"] == "https://news.example/casa-lume-milano" and news["language"] == "it"
    assert news["published_at"].endswith("+00:00") and "consegna gratuita" in news["text"]
    post = rows["tag:blog.example,2026:1"]
    assert post["source_kind"] == "blog" and post["source_name"] == "Diario" and post["author"] == "Giulia"
    assert post["text"] == "Dopo sei mesi il divano di Casa Lume è ancora perfetto, comodissimo!"  # HTML dropped

    warehouse = tmp_path / "warehouse.duckdb"
    report = load_landing(landing, warehouse)
    assert not report.failed_files and report.rows_quarantined == 0, str(report)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.web_mentions").fetchone() == (9,)


def test_listen_without_feeds_or_file(tmp_path, capsys):
    config = tmp_path / "listening.yml"
    config.write_text("brand: {name: Casa Lume}\n")
    assert main(["listen", "--config", str(config), "--landing", str(tmp_path)]) == 0
    assert "no feeds" in capsys.readouterr().out
    assert main(["listen", "--config", str(tmp_path / "missing.yml"), "--landing", str(tmp_path)]) == 2
