"""Open-loop HTTP load generator for `attiva serve` (used by serve_load.py, runs as its own process).

Request i is due at START + (OFFSET + i * STRIDE) / RATE whatever happened to the ones before it
(open loop: a slow answer does not slow the senders down, so queueing shows in the latencies, which
are measured from when each request was due, not from when it went out). Requests go over a pool of
keep-alive connections (raw asyncio sockets, one request in flight per connection); a new connection
is opened when none is free, up to --connections.

    ATTIVA_BENCH_KEY=... python benchmarks/serve_loadgen.py --port 8766 --rate 2000 --seconds 30 \\
        --start EPOCH --paths lookups.txt            # GET each path in turn
    ... --events 1                                   # POST /v1/events, N fresh events per request

Prints one JSON object: requests due, answered, errors by kind, latencies (ms) and the sender's lag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

IDLE_SECONDS = 4.0


class Connection:
    """One keep-alive HTTP/1.1 connection; answers are read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        self.used = time.monotonic()
        if b"connection: close" in head.lower():
            self.close()
        return status, body

    @property
    def closed(self) -> bool:
        return self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


def event_body(count: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    events = [{"event_id": uuid.uuid4().hex, "event_type": "page_view", "occurred_at": now,
               "anonymous_id": "bench-" + uuid.uuid4().hex[:8], "platform": "web", "url": "/"} for _ in range(count)]
    return json.dumps(events[0] if count == 1 else events, separators=(",", ":")).encode()


async def run(args: argparse.Namespace, key: str) -> dict:
    loop = asyncio.get_running_loop()
    host_header = f"Host: {args.host}:{args.port}\r\nAuthorization: Bearer {key}\r\n".encode()
    paths = Path(args.paths).read_text().split() if args.paths else []

    def request(i: int) -> bytes:
        if args.events:
            body = event_body(args.events)
            return (b"POST /v1/events HTTP/1.1\r\n" + host_header + b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return f"GET {paths[i % len(paths)]} HTTP/1.1\r\n".encode() + host_header + b"\r\n"

    total = int(args.rate * args.seconds / args.stride)
    start = loop.time() + (args.start - time.time())  # the shared wall-clock start, on this loop's clock
    idle: list[Connection] = []
    opened = [0]
    freed = asyncio.Condition()
    latencies: list[float] = []
    seconds: list[int] = []  # the second of the run each answered request was due in
    lags: list[float] = []
    errors: Counter[str] = Counter()
    accepted = [0]

    async def connection() -> Connection:
        async with freed:
            while not idle and opened[0] >= args.connections:
                await freed.wait()
            while idle:
                conn = idle.pop()
                # The server closes keep-alive connections idle for 5 s (uvicorn's default), as any
                # HTTP client knows: one idle for 4 s is not reused (the sender opens a fresh one).
                if time.monotonic() - conn.used < IDLE_SECONDS:
                    return conn
                conn.close()
                opened[0] -= 1
            opened[0] += 1
        try:
            return await Connection.open(args.host, args.port)
        except OSError:
            await release(None)
            raise

    async def release(conn: Connection | None) -> None:
        """Give a connection back to the pool, or (None) make room for a new one."""
        async with freed:
            if conn is not None and not conn.closed:
                idle.append(conn)
            else:
                opened[0] -= 1
            freed.notify()

    async def one(i: int, due: float) -> None:
        lags.append(loop.time() - due)  # how late this process itself was (busy CPU), before any pool wait
        payload = request(i)
        try:
            conn = await connection()
        except OSError as exc:
            errors[type(exc).__name__] += 1
            return
        try:
            status, body = await asyncio.wait_for(conn.send(payload), args.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] += 1
            conn.close()
            await release(None)
            return
        latencies.append((loop.time() - due) * 1000)
        seconds.append(int(due - start))
        await release(conn)
        if status != 200:
            errors[f"HTTP {status}"] += 1
        elif args.events:
            accepted[0] += json.loads(body)["accepted"]

    tasks = set()
    for i in range(total):
        due = start + (args.offset + i * args.stride) / args.rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        task = loop.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    finished = loop.time()
    for conn in idle:
        conn.close()
    lags.sort()
    return {"due": total, "answered": len(latencies), "errors": dict(errors), "latencies_ms": latencies,
            "seconds": seconds,
            "lag_ms_max": max(lags, default=0) * 1000, "lag_ms_p99": lags[int(len(lags) * 0.99)] * 1000 if lags else 0, "connections": opened[0],
            "elapsed": finished - start, "accepted_events": accepted[0],
            "cpu_seconds": sum(os.times()[:2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second of all processes together")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--start", type=float, default=None, help="epoch seconds when request 0 is due")
    parser.add_argument("--offset", type=int, default=0, help="this process sends requests OFFSET, OFFSET+STRIDE, ...")
    parser.add_argument("--stride", type=int, default=1, help="how many load processes share the rate")
    parser.add_argument("--connections", type=int, default=128, help="at most this many connections")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a request counts as an error")
    parser.add_argument("--paths", help="file of request paths (GET), used in turn")
    parser.add_argument("--events", type=int, default=0, help="POST /v1/events with this many events a request")
    args = parser.parse_args()
    if not args.paths and not args.events:
        parser.error("give --paths or --events")
    args.start = args.start or time.time() + 0.5
    key = os.environ["ATTIVA_BENCH_KEY"]  # not on the command line, where `ps` would show it
    try:
        import uvloop  # comes with uvicorn[standard]: a cheaper event loop leaves more CPU to the server

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(run(args, key))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
