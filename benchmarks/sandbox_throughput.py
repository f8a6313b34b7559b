"""Rows per second one client pushes into the sandbox's webhook and Meta endpoints.

One `requests` session sends 10,000-row batches back to back over loopback; the
figure includes the client's own JSON encoding and signing, the server's
validation and state keeping, and the debounced state writer running meanwhile.

Each endpoint is pushed for ``--seconds``, cycling over ``--distinct`` rows (the
first pass inserts, later passes update, as repeated syncs do), so memory stays
bounded while the state files keep being rewritten.

By default the server runs in its own process, as `attiva sandbox` does; with
``--in-process`` it runs in a thread of this process (``running_sandbox``).

    .venv/bin/python benchmarks/sandbox_throughput.py [--seconds 10] [--distinct 300000] [--in-process]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import running_sandbox  # noqa: E402

BATCH = 10_000
WEBHOOK_SECRET = "sandbox-webhook-token"
META_TOKEN = "sandbox-meta-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """A server's base URL; ``pid`` is its process, whose CPU time :func:`cpu_seconds` reads."""

    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sandbox_process(state_dir: Path, smtp_port: int = 0, webhook_unsigned: bool = False) -> Iterator[ServerURL]:
    """`attiva sandbox` in its own process; yields its base URL (with ``.pid``). `smtp_port` 0: no mail
    server; `webhook_unsigned`: the webhook takes posts without a signature (drt_compare.py)."""
    port = free_port()
    env = {**os.environ, "ATTIVA_WEBHOOK_TOKEN": WEBHOOK_SECRET, "ATTIVA_META_TOKEN": META_TOKEN}
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        str(port),
        "--state",
        str(state_dir),
        "--log-level",
        "warning",
        "--smtp-port",
        str(smtp_port),
        *(["--webhook-unsigned"] if webhook_unsigned else []),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sandbox process did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def webhook_batches(batches: int) -> Iterator[list[dict]]:
    for b in range(batches):
        start = b * BATCH
        yield [
            {
                "key": f"cust-{i:08d}",
                "email": f"user{i}@example.com",
                "first_name": "Ada",
                "segment": "vip",
                "score": i % 100,
            }
            for i in range(start, start + BATCH)
        ]


def meta_batches(batches: int) -> Iterator[list[list[str]]]:
    for b in range(batches):
        start = b * BATCH
        yield [[hashlib.sha256(f"user{i}@example.com".encode()).hexdigest()] for i in range(start, start + BATCH)]


def cycle(batches: list, started: float, seconds: float) -> Iterator:
    """Every batch once, then round and round until ``seconds`` have passed."""
    yield from batches
    while time.perf_counter() - started < seconds:
        yield from batches


def push_webhook(session: requests.Session, url: str, batches: int, seconds: float = 0.0) -> tuple[int, float]:
    data = list(webhook_batches(batches))
    sent = 0
    started = time.perf_counter()
    for rows in cycle(data, started, seconds):
        body = json.dumps({"rows": rows}).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = session.post(
            f"{url}/webhook/bench",
            data=body,
            headers={"Content-Type": "application/json", "X-Attiva-Signature": signature},
        )
        answer.raise_for_status()
        sent += sum(1 for r in answer.json()["results"] if r["ok"])
    return sent, time.perf_counter() - started


def push_meta(session: requests.Session, url: str, batches: int, seconds: float = 0.0) -> tuple[int, float]:
    data = list(meta_batches(batches))
    sent = 0
    started = time.perf_counter()
    for seq, rows in enumerate(cycle(data, started, seconds), start=1):
        body = {"payload": {"schema": ["EMAIL"], "data": rows}, "session": {"session_id": 42, "batch_seq": seq}}
        answer = session.post(
            f"{url}/meta/v21.0/1234567890/users", json=body, headers={"Authorization": f"Bearer {META_TOKEN}"}
        )
        answer.raise_for_status()
        result = answer.json()
        sent += result["num_received"] - result["num_invalid_entries"]
    return sent, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to push into each endpoint (default 10)")
    parser.add_argument("--distinct", type=int, default=300_000, help="distinct rows cycled over (default 300000)")
    parser.add_argument("--in-process", action="store_true", help="run the server in a thread of this process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "sandbox"
        runner = (
            running_sandbox(state, tokens={"webhook": WEBHOOK_SECRET, "meta": META_TOKEN})
            if args.in_process
            else sandbox_process(state)
        )
        with runner as url, requests.Session() as session:
            push_webhook(session, url, 1)  # warm-up: connection, imports, first allocation
            push_meta(session, url, 1)
            requests.post(f"{url}/_sandbox/reset", timeout=30).raise_for_status()
            batches = max(args.distinct // BATCH, 1)
            results = {}
            for name, push in (("webhook", push_webhook), ("meta", push_meta)):
                server, client = (cpu_seconds(url.pid) if not args.in_process else 0.0), time.process_time()
                rows, seconds = push(session, url, batches, args.seconds)
                client = time.process_time() - client
                server = cpu_seconds(url.pid) - server if not args.in_process else None
                results[name] = (rows, seconds, client, server, os.getloadavg()[0])
            state_view = requests.get(f"{url}/_sandbox/state/meta", timeout=60).json()
            stored = state_view["audiences"]["1234567890"]["count"]
        files = {p.name: p.stat().st_size for p in state.glob("*.json")}
    mode = "a thread of the client's process" if args.in_process else "its own process"
    print(f"sandbox throughput: {BATCH:,}-row batches, one client, server in {mode}")
    for name, (rows, seconds, client, server, load) in results.items():
        # CPU seconds per million rows: the steadier figure on a shared machine (the client's own JSON
        # encoding and signing is part of the wall time; the server's figure is the sandbox's capacity).
        cpu = f"client {client * 1e6 / rows:.2f}" + (f", server {server * 1e6 / rows:.2f}" if server is not None else "")
        print(f"  {name:8s} {rows:>9,} rows in {seconds:6.2f} s = {rows / seconds:>9,.0f} rows/s; "
              f"CPU-s per 1M rows: {cpu}; load {load:.2f}")
    print(
        f"  meta audience holds {stored:,} members; state files: {', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sorted(files.items()))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
