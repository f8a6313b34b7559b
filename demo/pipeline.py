"""`make demo`: the whole pipeline through Dagster, on DuckDB and the local sandbox.

Generates data (first run only), starts the sandbox (or uses one already listening),
then runs every asset (ingestion, dbt, quality gates, every sync) as one Dagster run
recorded in the instance `make dev` shows, and prints what each destination now holds.
Then seven simulated days (simulator/, docs/simulator.md): the customers buy, browse and answer the
messages sent, the shop's exports land, and the pipeline runs again as of a week later, so the
report shows uplift measured against the holdout beside what the simulated world planted.
A second `make demo` goes on from the simulated world's clock, another week later.

Usage: python -m demo [--customers N] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import requests

from activations import settings, warehouse
from activations.destinations.config import read_destinations
from activations.messaging.ledger import counts as message_counts
from activations.report import default_report_path
from activations.summary import summarize
from activations.syncs import last_runs
from sandbox.holdings import fetch_holdings


@contextlib.contextmanager
def sandbox() -> Iterator[str]:
    """The sandbox on ATTIVA_SANDBOX_PORT: the one already running (`make dev`), else one started here."""
    from sandbox.server import running_sandbox

    port = settings.sandbox_port()
    base = f"http://127.0.0.1:{port}"
    with contextlib.suppress(requests.RequestException):
        if requests.get(f"{base}/_sandbox/state/webhook", timeout=2).ok:
            print(f"==> using the sandbox already running on {base}")
            yield base
            return
    state = settings.data_dir() / "sandbox"
    print(f"==> starting the sandbox on {base} (state in {state})")
    smtp_port = settings.smtp_port()
    with running_sandbox(state, port=port, smtp_port=smtp_port) as started:
        yield started


@contextlib.contextmanager
def pipeline_sandbox() -> Iterator[str]:
    """The sandbox, with what the pipeline needs to reach it: its port and the ESP's event feed."""
    with sandbox() as base:
        os.environ["ATTIVA_SANDBOX_PORT"] = base.rsplit(":", 1)[1]
        from sandbox.server import events_url

        os.environ.setdefault("ATTIVA_ESP_EVENTS_URL", events_url(base))  # what recipients did, from the sandbox
        uninstalled_apps(base)
        from demo.social_leads import land_through_the_webhook

        land_through_the_webhook(base)  # lead-ad leads through `attiva serve`'s leadgen webhook
        listen_to_the_feeds()
        yield base


def listen_to_the_feeds() -> None:
    """`attiva listen`: the sandbox's news and blog feeds (listening.yml) into the landing folder."""
    from activations.listening.config import load_listening
    from activations.listening.feeds import listen

    listening = load_listening()
    if listening is not None and listening.feeds:
        print(f"==> attiva listen: {listen(listening, settings.landing_path())}")


def uninstalled_apps(base: str) -> None:
    """Tell the sandbox's FCM which apps the generator uninstalled: their tokens, still in the landing files,
    are answered UNREGISTERED, as FCM answers for an app that is gone (the send path then retires them)."""
    from generator.run import TRUTH_FOLDER

    truth = settings.landing_path() / TRUTH_FOLDER / "uninstalled_push_tokens.parquet"
    if not truth.is_file():
        return
    import polars as pl

    tokens = pl.read_parquet(truth, columns=["push_token"])["push_token"].to_list()
    if tokens:
        requests.post(f"{base}/_sandbox/fcm/unregister", json={"tokens": tokens}, timeout=30).raise_for_status()


def pin_daytime(zone: str = "Europe/Rome") -> None:
    """Inside the quiet hours (in Rome, the demo shop's home) every message would wait for the morning
    and the demo would show none sent: run as of an hour before they began instead. Earlier, not the
    next morning: a later `make dev` then moves the clock forward, never back. ATTIVA_AS_OF wins."""
    from activations.messaging.policy import load_settings

    window = load_settings().quiet_hours
    if os.environ.get("ATTIVA_AS_OF") or window is None:
        return
    local = datetime.now(UTC).astimezone(ZoneInfo(zone)).replace(microsecond=0)
    if not window.contains(local.time()):
        return
    began = local.replace(hour=window.start.hour, minute=window.start.minute, second=0)
    if began > local:  # a window across midnight, after it
        began -= timedelta(days=1)
    os.environ["ATTIVA_AS_OF"] = (began - timedelta(hours=1)).astimezone(UTC).isoformat()
    print(f"==> quiet hours in Rome: the demo runs as of {os.environ['ATTIVA_AS_OF']}, before they began")


def generate_if_empty(customers: int, seed: int) -> None:
    from generator import generate

    landing = settings.landing_path()
    if landing.exists() and any(landing.rglob("*.*")):
        print(f"==> landing folder {landing} already has files: not generating")
        return
    print(f"==> generating {customers:,} customers into {landing}")
    print(generate(customers=customers, seed=seed, out=landing, as_of=settings.as_of()))


def run_everything() -> dg.ExecuteJobResult:
    """Every asset and check as one run, in the instance under DAGSTER_HOME when set, the weekly predictive
    models included, so the report shows what they learned: the propensity models take about 10 s on the
    demo's 52k customers, the lifetime-value model under 1 s. A refused model holds nothing back (its check
    does not block: the audiences that read its scores run on the previous ones)."""
    from orchestration.definitions import defs

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    demo = dg.define_asset_job("demo", selection=dg.AssetSelection.all())
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[demo])).resolve_job_def("demo")
    # INFO on the console: step starts, dbt's summary and every sync's counts, not Dagster's debug events.
    return job.execute_in_process(instance=instance, raise_on_error=False, tags={"attiva/trigger": "demo"},
                                  run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})


def report(result: dg.ExecuteJobResult, base_url: str, seconds: float) -> None:
    failed = [e for e in result.all_events if e.is_step_failure]
    print("\n==> what the warehouse holds")
    print(summarize(settings.warehouse_path()))
    with warehouse.connect(read_only=True) as con:
        runs = last_runs(con)
    print("\n==> syncs (latest run)")
    print(f"  {'sync':<44} {'status':<24} {'audience':>9} {'sent':>8} {'confirmed':>9} {'rejected':>8} {'invalid':>8}")
    for name, run in sorted(runs.items()):
        print(f"  {name:<44} {run['status']:<24} {run['audience_rows'] or 0:>9,} {run['planned'] or 0:>8,} "
              f"{run['confirmed'] or 0:>9,} {run['rejected'] or 0:>8,} {run['invalid'] or 0:>8,}")
    with warehouse.connect(read_only=True) as con:
        ledger_counts = message_counts(con)
    if ledger_counts:
        states = ("planned", "sent", "suppressed", "held_out", "skipped", "failed")
        print("\n==> triggered messages (activation.message_ledger; planned = due later, skipped = a journey's "
              "branch not taken)")
        print(f"  {'campaign':<24} " + " ".join(f"{s:>10}" for s in states))
        for campaign, counts in sorted(ledger_counts.items()):
            print(f"  {campaign:<24} " + " ".join(f"{counts.get(s, 0):>10,}" for s in states))
        mail = requests.get(f"{base_url}/_sandbox/mail", params={"limit": 1}, timeout=10).json()
        print(f"  the sandbox's SMTP server holds {mail['total']:,} message(s): {base_url}/_sandbox/mail")
        pushes = requests.get(f"{base_url}/_sandbox/state/fcm", timeout=10).json()
        print(f"  the sandbox's FCM accepted {pushes['sent_count']:,} push(es), {len(pushes['unregistered']):,} token(s) "
              f"unregistered (uninstalled apps): {base_url}/_sandbox/state/fcm")
        print(f"  what recipients did, fed back by feedback/engagement_events: {engagement_summary()}")
    # The usable instances only: a broken declaration stopped its own syncs (reported above), not this summary.
    types = sorted({c.type for c in read_destinations().configs.values()} - {"file_export"})
    print(f"\n==> what each sandbox destination now holds ({base_url}/_sandbox/state)")
    for dest_type, counts in fetch_holdings(base_url, types).items():
        print(f"  {dest_type:<18} " + ", ".join(f"{label}: {n:,}" for label, n in counts.items()))
    exports = settings.data_dir() / "exports"
    if exports.is_dir():
        print(f"  {'files':<18} {len(list(exports.glob('*.*')))} file(s) in {exports}")
    for event in failed:
        print(f"\nFAILED {event.step_key}: {event.message}", file=sys.stderr)
    print(f"\ndone in {seconds:.0f}s ({'ok' if result.success else 'with failures'}). Next: `make dev` opens "
          f"the Dagster UI on http://127.0.0.1:{settings.dagster_port()} (this run is under Runs); `.venv/bin/attiva syncs` lists syncs; "
          f"the sandbox's state is at {base_url}/_sandbox/state.")
    # Last, so it is what the terminal shows: the report this run wrote, not one left by an earlier run.
    written = [e.materialization.metadata.get("path") for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == "report/marketing_report"]
    if written and written[0] is not None:
        print(f"\n==> the marketing report (campaigns, uplift vs holdout, A/B tests, audiences over time, funnel, "
              f"sync health); open it in a browser:\n  {written[0].value}")
    else:
        print(f"\n==> the marketing report was not written by this run (see FAILED above); "
              f"`attiva report` writes it to {default_report_path()}")


def engagement_summary() -> str:
    """Delivered, opened, clicked, bounced and unsubscribed messages over every campaign (measurement views)."""
    with warehouse.connect(read_only=True) as con:
        if not warehouse.has_table(con, "measurement", "campaign_performance"):
            return "no measurement views yet"
        row = con.execute("""select sum(delivered), sum(opened), sum(clicked), sum(bounced), sum(unsubscribed),
                                      sum(complained), sum(converted)
                               from measurement.campaign_performance""").fetchone()
    labels = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "complained", "converted")
    return ", ".join(f"{int(n or 0):,} {label}" for label, n in zip(labels, row, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--days", type=int, default=7,
                        help="then simulate this many days of customers answering (0: none), the pipeline once more")
    args = parser.parse_args(argv)
    started = time.monotonic()
    follow_the_simulation()
    pin_daytime()
    generate_if_empty(args.customers, args.seed)
    if args.days >= 1:  # the simulated recipients answer at the world's rates from the first send
        from simulator.run import plant_world

        plant_world(args.seed)
    with pipeline_sandbox() as base:
        print("==> one Dagster run: ingest -> dbt build + quality gates -> every sync and triggered message")
        result = run_everything()
        report(result, base, time.monotonic() - started)
        from demo.realtime import cart_to_reminder

        print()
        realtime_ok = cart_to_reminder(base)
        if args.days < 1:
            print_console()
            return 0 if result.success and realtime_ok else 1
        from simulator.run import simulate

        print(f"\n==> {args.days} simulated days: the customers answer what was sent (docs/simulator.md), "
              "then the pipeline runs again as of then")
        simulated = simulate(days=args.days, every=args.days, seed=args.seed)
    print(f"\ndone in {time.monotonic() - started:.0f}s. The report, now with uplift measured against the holdout:"
          f"\n  {settings.data_dir() / 'report' / default_report_path().name}")
    print_console()
    return 0 if result.success and realtime_ok and simulated.ok else 1


def print_console() -> None:
    """Last, what a marketer opens: the console `make dev` starts."""
    print(f"\n==> the marketer's console (audiences, builder, customers, campaigns): `make dev`, then open"
          f"\n  http://127.0.0.1:{settings.studio_port()}  (the first time, `make dev` prints the admin's password)")


def follow_the_simulation() -> None:
    """After `attiva simulate` (or an earlier demo) the pipeline's clock is the simulated world's: a run as of
    the wall clock would go back in time."""
    from simulator.days import State

    state = State.read(settings.landing_path())
    if state is not None and not os.environ.get("ATTIVA_AS_OF"):
        os.environ["ATTIVA_AS_OF"] = datetime.fromtimestamp(state.clock, UTC).isoformat()
        print(f"==> the simulated world's clock: the demo runs as of {os.environ['ATTIVA_AS_OF']}")


if __name__ == "__main__":
    raise SystemExit(main())
