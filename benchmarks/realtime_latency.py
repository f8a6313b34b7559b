"""Event accepted by `POST /v1/events` -> message accepted by SMTP, through `attiva realtime`.

    .venv/bin/python benchmarks/realtime_latency.py [--customers 10000] [--rate 100] [--seconds 60]
                                                    [--carts-every 20] [--keep DIR]

What runs, each in its own process as in production: the sandbox (SMTP and HTTP), `attiva serve`
(the event collector: each request validated, written to the landing folder, fsync'ed, then
answered) and `attiva realtime` (the always-on event path: dbt kept in memory, the event-driven
triggers and their incremental parents run per batch, then one messaging pass). The warehouse is
`attiva generate` + `attiva ingest` + `attiva build` at --customers, built before the clock starts.

The load, open loop: `--rate` requests per second for `--seconds`, one event per request (as a
browser sends them), from 8 client threads with keep-alive connections. Every `--carts-every`-th
event is an add_to_cart of a known customer who qualifies for the cart reminder (email consent,
not suppressed, outside the holdout, no cart or message yet); the others are page and product
views, half by anonymous visitors and half by known customers, which the identity and event models
take in too. Latency of a cart: from the moment `attiva serve` answered `accepted` to the SMTP
server's `received_at` of the reminder it causes.

The policy under test is the project's with trg_abandoned_cart's 2 h delay made 0 and its quiet
hours none, written into a copy of the project (benchmarks/event_latency.py does the same), so the
figure is the path, not the policy.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activations.serve.keys import add_key  # noqa: E402
from benchmarks.event_latency import BIN, cart_event, log, pick_customers, project_copy, received, run, stop  # noqa: E402
from benchmarks.sandbox_throughput import META_TOKEN, WEBHOOK_SECRET, free_port, sandbox_process  # noqa: E402

THREADS = 8


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log_file: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited\n{log_file.read_text()[-4000:] if log_file else ''}")
        time.sleep(0.1)
    raise SystemExit(f"{what}: not within {timeout:.0f}s\n{log_file.read_text()[-4000:] if log_file else ''}")


def browsing(shop_ids: list[str], products: list[str], i: int, rng: random.Random) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event = {"event_id": f"VIEW-{i:07d}", "event_type": rng.choice(("page_view", "product_view")), "occurred_at": now,
             "anonymous_id": f"anon-{rng.randrange(1_000_000)}", "platform": "web"}
    if rng.random() < 0.5:
        event["user_id"] = rng.choice(shop_ids)
    if event["event_type"] == "product_view":
        event["product_id"] = rng.choice(products)
    return event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second, one per request")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--carts-every", type=int, default=20, help="one event in N is a qualifying cart")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    base = args.keep or Path(tempfile.mkdtemp(prefix="attiva-realtime-"))
    home, data = base / "project", base / "data"
    for folder in (home, data, base / "sandbox"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    landing, warehouse, keys = data / "landing", data / "warehouse.duckdb", base / "keys.yml"
    keys.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "ATTIVA_"))}
    env.update({"ATTIVA_HOME": str(home), "ATTIVA_DATA": str(data), "ATTIVA_LANDING": str(landing),
                "ATTIVA_WAREHOUSE": str(warehouse), "ATTIVA_WEBHOOK_TOKEN": WEBHOOK_SECRET,
                "ATTIVA_META_TOKEN": META_TOKEN, "ATTIVA_SERVE_KEYS": str(keys), "PYTHONPATH": str(ROOT)})

    log(f"project copy in {home} (trg_abandoned_cart: delay 0h, quiet hours none)")
    project_copy(home)
    seconds = run([str(BIN / "attiva"), "generate", "--customers", str(args.customers), "--out", str(landing)], env,
                  "attiva generate")
    seconds += run([str(BIN / "attiva"), "ingest"], env, "attiva ingest")
    seconds += run([str(BIN / "attiva"), "build"], env, "attiva build")
    log(f"warehouse of {args.customers:,} customers generated, ingested and built in {seconds:.0f}s")

    total = int(args.rate * args.seconds)
    carts = total // args.carts_every
    people, product = pick_customers(warehouse, carts)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        shop_ids = [r[0] for r in con.execute("select shop_customer_id from raw.shop_customers limit 5000").fetchall()]
        products = [r[0] for r in con.execute("select product_id from marts.products").fetchall()]
    key = add_key(keys, "bench", per_second=args.rate * 10, burst=int(args.rate * 10))
    mailbox = base / "sandbox" / "smtp" / "messages.jsonl"

    smtp_port, serve_port = free_port(), free_port()
    serve = worker = None
    with sandbox_process(base / "sandbox", smtp_port=smtp_port) as url:
        env.update({"ATTIVA_SANDBOX_PORT": url.rsplit(":", 1)[1], "ATTIVA_SMTP_PORT": str(smtp_port)})
        serve_log, worker_log = base / "serve.log", base / "realtime.log"
        try:
            with serve_log.open("w") as out:
                serve = subprocess.Popen([str(BIN / "attiva"), "serve", "--port", str(serve_port)], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            with worker_log.open("w") as out:
                worker = subprocess.Popen([str(BIN / "attiva"), "realtime", "--due-every", "600"], cwd=ROOT, env=env,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            events_url = f"http://127.0.0.1:{serve_port}/v1/events"
            headers = {"Authorization": f"Bearer {key}"}

            def up() -> bool:
                try:
                    return requests.get(f"http://127.0.0.1:{serve_port}/openapi.json", timeout=1).ok
                except requests.RequestException:
                    return False

            wait_until(up, 60, "attiva serve", serve, serve_log)
            # The worker's first turn parses the project and runs the pass on what the build made due.
            wait_until(lambda: "realtime:" in worker_log.read_text() and "\n[" in worker_log.read_text(), 180,
                       "attiva realtime's first turn", worker, worker_log)
            warm, people = people[0], people[1:]
            requests.post(events_url, json=cart_event(warm, product, 0), headers=headers, timeout=10).raise_for_status()
            wait_until(lambda: warm["email"].lower() in received(mailbox), 120, "the warm-up cart's reminder",
                       worker, worker_log)
            log(f"warmed up; {total:,} events at {args.rate:g}/s, {len(people)} of them qualifying carts")

            accepted: dict[str, float] = {}
            errors: list[str] = []
            late: list[float] = []
            plan = []
            queue_people = iter(people)
            for i in range(total):
                person = next(queue_people, None) if i % args.carts_every == args.carts_every - 1 else None
                plan.append((i, person))
            started = time.monotonic() + 0.5

            def client(offset: int) -> None:
                rng = random.Random(offset)
                session = requests.Session()
                for i, person in plan[offset::THREADS]:
                    due = started + i / args.rate
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    else:
                        late.append(-pause)
                    event = cart_event(person, product, i) if person else browsing(shop_ids, products, i, rng)
                    try:
                        answer = session.post(events_url, json=event, headers=headers, timeout=10)
                        status = answer.json()["results"][0]["status"] if answer.ok else answer.status_code
                    except (requests.RequestException, ValueError, KeyError) as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if status != "accepted":
                        errors.append(f"event {i}: {status}")
                    elif person:
                        accepted[person["email"].lower()] = time.time()

            threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent_for = time.monotonic() - started
            log(f"sent {total:,} events in {sent_for:.1f}s ({total / sent_for:.0f}/s), {len(errors)} errors")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not set(accepted) <= set(received(mailbox)):
                time.sleep(0.5)
            got = received(mailbox)
        finally:
            stop(worker)
            stop(serve)

    latencies = [got[e] - at for e, at in accepted.items() if e in got]
    missing = len(accepted) - len(latencies)
    turns = [line for line in worker_log.read_text().splitlines() if "dbt model(s) run" in line]
    print()
    print(f"event accepted by POST /v1/events -> reminder accepted by SMTP, through `attiva realtime`: "
          f"{args.customers:,} customers, {total:,} events at {args.rate:g}/s for {args.seconds:g}s, "
          f"{len(accepted)} qualifying carts ({missing} never arrived), {len(errors)} request errors")
    if latencies:
        print(f"  p50 {statistics.median(latencies):.2f}s   p95 {percentile(latencies, 0.95):.2f}s   "
              f"p99 {percentile(latencies, 0.99):.2f}s   max {max(latencies):.2f}s   (target p95 <= 5 s)")
    if late:
        print(f"  the load generator fell behind its schedule {len(late)} times, by up to {max(late):.2f}s")
    print(f"  worker turns with events: {len(turns)}; the last: {turns[-1] if turns else '-'}")
    load = os.getloadavg()
    print(f"  load average after the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    if errors:
        print(f"  first errors: {errors[:3]}")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if latencies and not missing and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
