"""Messages per second `SmtpChannel` delivers to the sandbox's SMTP server (target ≥ 500/s).

The sandbox (`python -m sandbox`, HTTP and SMTP) runs in its own process,
as `attiva sandbox` does. The client builds each multipart message (text + HTML, our
ids in the headers) and sends it with a full SMTP transaction (MAIL, RCPT, DATA) from
``--threads`` threads over a pool of as many reused connections. The figure includes
the server parsing and appending every message to its JSONL store; at the end the
sandbox's ``GET /_sandbox/mail`` must count exactly ``--messages``.

    .venv/bin/python benchmarks/smtp_throughput.py [--messages 20000] [--threads 8]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.messaging.channels import OutgoingMessage, SmtpChannel  # noqa: E402
from benchmarks.sandbox_throughput import free_port, sandbox_process  # noqa: E402

HTML = "<html><body><p>Ciao {name},</p><p>il tuo caffè preferito è in offerta: <b>-20%</b>.</p>{filler}</body></html>"
TEXT = "Ciao {name},\nil tuo caffè preferito è in offerta: -20%.\n{filler}"


@contextlib.contextmanager
def sandbox_with_smtp(state_dir: Path) -> Iterator[tuple[str, tuple[str, int]]]:
    """The sandbox in its own process: (HTTP base URL, (SMTP host, port))."""
    smtp_port = free_port()
    with sandbox_process(state_dir, smtp_port=smtp_port) as url:
        yield url, ("127.0.0.1", smtp_port)


def message(i: int) -> OutgoingMessage:
    name = f"Cliente {i}"
    filler = "Lorem ipsum dolor sit amet. " * 40  # about 2 KB per message, like a short marketing email
    return OutgoingMessage(
        message_id=f"bench.{i:020d}.1@attiva",
        to_email=f"customer{i}@example.com",
        to_name=name,
        from_email="ciao@caffe-aurora.example",
        from_name="Caffè Aurora",
        subject=f"{name}, il tuo caffè è in offerta",
        html=HTML.format(name=name, filler=f"<p>{filler}</p>"),
        text=TEXT.format(name=name, filler=filler),
        headers={"List-Unsubscribe": f"<https://caffe-aurora.example/u/{i}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        campaign="bench",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000, help="messages to send (default 20000)")
    parser.add_argument("--threads", type=int, default=8, help="sending threads = pooled connections (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_with_smtp(Path(tmp) / "sandbox") as (url, (host, port)):
        channel = SmtpChannel(host, port, pool_size=args.threads, timeout=30)
        for i in range(args.threads):  # warm-up: connections and imports; not counted
            assert channel.send(message(-1 - i)).ok
        requests.post(f"{url}/_sandbox/reset", json={"destination": "mail"}, timeout=30).raise_for_status()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            deliveries = list(pool.map(lambda i: channel.send(message(i)), range(args.messages)))
        seconds = time.perf_counter() - started
        channel.close()
        failed = [d for d in deliveries if not d.ok]
        stored = requests.get(f"{url}/_sandbox/mail", params={"limit": 0}, timeout=60).json()["total"]
    rate = (len(deliveries) - len(failed)) / seconds
    print(f"smtp throughput: {args.messages:,} messages, {args.threads} threads/connections, server in its own process")
    print(f"  {len(deliveries) - len(failed):,} accepted, {len(failed):,} failed in {seconds:.2f} s "
          f"= {rate:,.0f} messages/s (target ≥ 500/s)")
    print(f"  sandbox stored {stored:,} messages")
    if failed:
        print(f"  first failure: {failed[0].reason}")
    return 0 if not failed and stored == args.messages and rate >= 500 else 1


if __name__ == "__main__":
    sys.exit(main())
