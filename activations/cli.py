"""The `attiva` command: parse arguments, call the library, print the outcome.

Commands stay thin; each imports its module lazily so `attiva --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from activations import settings

Handler = Callable[[argparse.Namespace], int]


def cmd_ingest(args: argparse.Namespace) -> int:
    from activations.ingest import load_landing

    if not Path(args.landing).is_dir():
        print(f"attiva ingest: landing folder {args.landing} does not exist (set ATTIVA_LANDING or --landing)",
              file=sys.stderr)
        return 2
    report = load_landing(args.landing, args.warehouse)
    print(report)
    return 1 if report.failed_files else 0


def cmd_build(args: argparse.Namespace) -> int:
    from activations.build import build_warehouse

    result = build_warehouse(as_of=args.as_of, warehouse=args.warehouse, select=args.select,
                             full_refresh=args.full_refresh, echo=args.verbose, target=args.target)
    print(result)
    return 0 if result.ok else 1


def cmd_summary(args: argparse.Namespace) -> int:
    from activations.summary import summarize

    if not Path(args.warehouse).exists():
        print(f"attiva summary: no warehouse at {args.warehouse}: run `attiva demo` or ingest and build first",
              file=sys.stderr)
        return 2
    print(summarize(args.warehouse))
    return 0


def cmd_contract(args: argparse.Namespace) -> int:
    from activations.ingest.docs import contract_markdown

    print(contract_markdown())
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from activations import warehouse
    from activations.destinations import DestinationConfigError, load_destinations
    from activations.erasure import drive_erasures, erasure_status, format_status
    from activations.forget import forget

    if not Path(args.warehouse).exists():
        print(f"attiva forget: no warehouse at {args.warehouse}", file=sys.stderr)
        return 2
    if not (args.who or args.status or args.retry):
        print("attiva forget: name an email address or customer id, or use --status / --retry", file=sys.stderr)
        return 2
    with warehouse.connect(Path(args.warehouse)) as con:
        if args.status:
            statuses = erasure_status(con)
            print(format_status(statuses, pending_only=not args.all))
            return 3 if any(s.status == "pending" for s in statuses) else 0
        try:
            destinations = load_destinations()
        except DestinationConfigError as exc:  # which destinations to erase at is unknown: do nothing yet
            print(f"attiva forget: {exc}", file=sys.stderr)
            return 2
        report = None
        if args.who:
            report = forget(con, args.who, destinations=destinations)
            print(report)
        # Ask the destinations now; whatever they do not confirm is retried by every sync run and --retry.
        pending = drive_erasures(con, destinations)
        print(format_status(pending))
    if report is not None and not report.customers:
        return 1
    return 3 if pending else 0


def _review_identity(args: argparse.Namespace) -> int:
    from activations.identity import review
    from activations.warehouse import connect

    decision = ("accepted", args.accept) if args.accept else ("rejected", args.reject) if args.reject else None
    if not Path(args.warehouse).exists():
        print(f"attiva identity: no warehouse at {args.warehouse}: run `attiva build` first", file=sys.stderr)
        return 2
    with connect(args.warehouse, read_only=decision is None) as con:
        if decision is not None:
            status, pair = decision
            try:
                before = review.decide(con, pair, status, datetime.now(UTC).replace(tzinfo=None))
            except review.UnknownPair as exc:
                print(f"attiva identity: {exc}", file=sys.stderr)
                return 1
            print(f"{pair}: {before['record_id_l']} ~ {before['record_id_r']} {status} (was {before['status']}); "
                  f"the next `attiva build` {'links' if status == 'accepted' else 'keeps apart'} the two records")
        if args.review:
            print(review.format_queue(review.queue(con), limit=args.limit))
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    from activations import warehouse
    from activations.messaging import status

    if not Path(args.warehouse).exists():
        print(f"attiva messages: no warehouse at {args.warehouse}", file=sys.stderr)
        return 2
    with warehouse.connect(Path(args.warehouse), read_only=True) as con:
        if args.action == "why":
            ids, rows = status.why(con, args.customer, args.campaign)
            print(status.why_text(args.customer, ids, rows, args.campaign))
            return 0 if rows else 1
        if args.action == "variants":
            return _print_variants(con, args.campaign, args.reward)
        print(status.campaigns_table(status.campaigns(con)))
    return 0


def cmd_campaigns(args: argparse.Namespace) -> int:
    """`attiva campaigns`: which campaigns are paused; `pause CAMPAIGN` / `resume CAMPAIGN`."""
    import getpass

    from activations import warehouse
    from activations.manifest import load_manifest
    from activations.messaging import actions
    from activations.messaging.policy import campaign_name, trigger_models

    if not Path(args.warehouse).exists():
        print(f"attiva campaigns: no warehouse at {args.warehouse}", file=sys.stderr)
        return 2
    if args.action is None:
        with warehouse.connect(Path(args.warehouse), read_only=True) as con:
            paused = actions.paused(con)
        print("\n".join(f"{p.campaign}: {p.sentence()}" for p in paused.values()) or "no campaign is paused")
        return 0
    declared = {campaign_name(node) for node in trigger_models(load_manifest())}
    if args.campaign not in declared:
        print(f"attiva campaigns: no campaign {args.campaign!r} is declared ({', '.join(sorted(declared))})",
              file=sys.stderr)
        return 2
    pause = args.action == "pause"
    with warehouse.connect(Path(args.warehouse)) as con:
        changed = actions.set_paused(con, args.campaign, pause, f"{getpass.getuser()} (cli)")
    state = "paused" if pause else "resumed"
    print(f"{args.campaign} {state}" if changed else f"{args.campaign} was already {'paused' if pause else 'active'}")
    return 0


def _print_variants(con, campaign: str, reward: str) -> int:
    from activations.messaging import offpolicy

    found = offpolicy.compare(con, campaign, reward, datetime.now(UTC))
    if not found:
        print(f"attiva messages variants: {campaign} has no step with two variants in the ledger", file=sys.stderr)
        return 1
    table = _table("step", "variant", "settled", f"{reward} rate", "allocated now", f"IPS: {reward} if sent to all",
                   "95 % interval")
    for row in found:
        interval = row.always.interval
        table.add_row(str(row.step), row.variant, _count(row.messages), _share(row.observed), _share(row.allocated),
                      _share(row.always.rate),
                      f"{_share(max(interval[0], 0))} to {_share(min(interval[1], 1))}" if interval else "")
    _stdout().print(table)
    return 0


def _share(value: float | None) -> str:
    return f"{value:.2%}" if value is not None else ""


def cmd_identity(args: argparse.Namespace) -> int:
    """`attiva identity CUSTOMER`: why that customer is who they are; `--review`, `--accept`,
    `--reject`: the probable matches waiting for a decision."""
    if args.review or args.accept or args.reject:
        return _review_identity(args)
    if args.customer is None:
        raise UsageError("name a customer (a customer id, or an email, phone, contact, account or device id), "
                         "or give --review, --accept PAIR_ID or --reject PAIR_ID")
    return _explain_identity(args)


def _explain_identity(args: argparse.Namespace) -> int:
    from activations.identity import explain

    if _target(args) == "duckdb" and not Path(args.warehouse).exists():
        raise UsageError(f"no warehouse at {args.warehouse}: run `attiva demo` or ingest and build first")
    with _open_warehouse(args) as con:
        found = [explain.explain(con, customer) for customer in explain.find_customers(con, args.customer)]
    print(explain.explanation_text(args.customer, found))
    return EXIT_OK if found else 1


def cmd_report(args: argparse.Namespace) -> int:
    from activations import warehouse
    from activations.report import write_report

    if not Path(args.warehouse).exists():
        print(f"attiva report: no warehouse at {args.warehouse}: run `attiva demo` or ingest and build first",
              file=sys.stderr)
        return 2
    with warehouse.connect(Path(args.warehouse), read_only=True) as con:
        path = write_report(con, args.out)
    print(path)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    import json

    import requests

    from activations.messaging.feedback import (
        EVENTS_URL_ENV,
        FeedbackError,
        engagement_rows,
        event_feed,
        fetch_events,
        write_landing_file,
    )

    if args.events:
        events = json.loads(Path(args.events).read_text())
        if not isinstance(events, list):
            print(f"attiva feedback: {args.events} is not a JSON array of events", file=sys.stderr)
            return 2
    else:
        feed = event_feed()
        if not feed.url:
            print(f"attiva feedback: no ESP event feed ({EVENTS_URL_ENV} is not set): give --events",
                  file=sys.stderr)
            return 2
        try:
            events = fetch_events(feed.url)
        except FeedbackError as exc:
            print(f"attiva feedback: {exc}", file=sys.stderr)
            return 1
        except requests.RequestException as exc:
            print(f"attiva feedback: the ESP event feed {feed.url} could not be reached ({type(exc).__name__})",
                  file=sys.stderr)
            return 1
    path = write_landing_file(engagement_rows(events), args.landing)
    print(path if path else "no new engagement events")
    return 0


def cmd_leads_fetch(args: argparse.Namespace) -> int:
    from activations.serve.meta_leads import PENDING_FOLDER, retry_pending

    landing = Path(args.landing) if args.landing else settings.landing_path()
    counts = retry_pending(landing)
    print(f"{counts['landed']} lead(s) landed in {landing / 'social' / 'leads'}, {counts['pending']} still pending"
          + (f" (last_error in {landing / PENDING_FOLDER})" if counts["pending"] else ""))
    return 0 if not counts["pending"] else 1


def cmd_listen(args: argparse.Namespace) -> int:
    from activations.listening.config import load_listening
    from activations.listening.feeds import listen

    path = Path(args.config) if args.config else settings.listening_path()
    listening = load_listening(path)
    if listening is None:
        raise UsageError(f"no {path}: write the brand, competitors, topics and feeds there (docs/listening.md)")
    if not listening.feeds:
        print(f"no feeds in {path}: nothing to fetch")
        return 0
    result = listen(listening, Path(args.landing) if args.landing else settings.landing_path())
    print(result)
    return 1 if result.failed else 0


# -- syncs ----------------------------------------------------------------------------------------
# Exit codes of the sync commands (also in `attiva --help`).
EXIT_OK, EXIT_NOT_DELIVERED, EXIT_USAGE, EXIT_REFUSED, EXIT_INVALID_ROWS = 0, 1, 2, 3, 4
EXIT_CODES = """exit codes:
  0  everything delivered (or nothing to do)
  1  this run did not deliver everything it could: it failed (destination unreachable, bad answers),
     stopped (quota, long rate limit), or gave up on rows after retries; the next run tries again
  2  usage error: unknown sync, bad declaration, missing manifest or warehouse, bad destinations.yml
  3  refused: a guard stopped a mirror sync (rerun with --force), or the reviewed plan changed
  4  delivered, except rows the destination will never take as they are (invalid identifiers, rows
     it refused): fix them at the source (`attiva status SYNC` says why); each run tries them again
     (`attiva sync --all`: the most serious code of any sync, in the order 2, 3, 1, 4, 0)"""
# `attiva sync --all` exits with its most serious outcome: a failure outranks rows held back as invalid.
SEVERITY = {EXIT_OK: 0, EXIT_INVALID_ROWS: 1, EXIT_NOT_DELIVERED: 2, EXIT_REFUSED: 3, EXIT_USAGE: 4}


class UsageError(Exception):
    """A mistake the user fixes (name, file, declaration): one line on stderr, exit 2."""


def _declared():
    """The declared syncs (runnable and broken: one broken declaration fails only the commands about
    it) and the usable destinations; a missing or unreadable manifest is a UsageError."""
    from activations.destinations.config import read_destinations
    from activations.manifest import declared_syncs, load_manifest

    try:
        manifest = load_manifest()
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    destinations = read_destinations()
    return declared_syncs(manifest, destinations), destinations.configs


def _find(name: str, declared):
    """The runnable sync `name`; a UsageError with its mistake if its declaration is broken."""
    from activations.syncs import UnknownSync, find

    if broken := declared.broken_named(name):
        raise UsageError(f"{name} cannot run: {broken.reason}")
    try:
        return find(name, declared.syncs + declared.broken)
    except UnknownSync as exc:
        raise UsageError(str(exc)) from None


def _report_broken(command: str, declared) -> int:
    """Say on stderr why each broken sync cannot run; EXIT_USAGE if there is one, else EXIT_OK."""
    for broken in declared.broken:
        print(f"attiva {command}: {broken.name} cannot run: {broken.reason}", file=sys.stderr)
    return EXIT_USAGE if declared.broken else EXIT_OK


def _require_warehouse(args: argparse.Namespace) -> None:
    if _target(args) == "duckdb" and not Path(args.warehouse).exists():
        raise UsageError(f"no warehouse at {args.warehouse}: run `attiva demo` or ingest and build first")


def _target(args: argparse.Namespace) -> str:
    from activations.syncs import target_name

    try:
        return target_name(getattr(args, "target", None))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _open_warehouse(args: argparse.Namespace):
    """The DuckDB file, or the local Spark target's tables with --target spark."""
    from activations.syncs import open_warehouse

    return open_warehouse(_target(args), Path(args.warehouse))


def _stdout():
    from rich.console import Console

    # Piped output (a file, grep, a test) keeps whole lines instead of wrapping at 80 columns.
    return Console(width=None if sys.stdout.isatty() else 1000, highlight=False)


def _table(*columns: str):
    from rich.table import Table

    table = Table(box=None)
    for column in columns:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps names, never cuts them
    return table


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _count(value) -> str:
    return f"{value:,}" if value is not None else ""


def cmd_realtime(args: argparse.Namespace) -> int:
    from activations.messaging.realtime import run_forever

    if not Path(args.warehouse).exists():
        raise UsageError(f"no warehouse at {args.warehouse}: build it first (attiva build), the event path updates it")
    as_of = settings.as_of() if settings.as_of_pinned() else None
    return run_forever(args.landing, args.warehouse, as_of, poll=args.poll, due_every=args.due_every,
                       once=args.once, say=lambda line: print(line, flush=True))


def cmd_syncs(args: argparse.Namespace) -> int:
    all_syncs, _ = _declared()
    runs: dict[str, dict] = {}
    if _target(args) == "spark" or Path(args.warehouse).exists():
        from activations.syncs import last_runs

        with _open_warehouse(args) as con:
            runs = last_runs(con)
    # What the destination holds now and the totals over every run: a quiet run confirms 0 and is no outage.
    table = _table("sync", "audience", "destination", "mode", "consent", "last status", "last run (UTC)",
                   "holds", "confirmed (last run)", "confirmed (all runs)", "pending rejects")
    for sync in all_syncs.syncs:
        run = runs.get(sync.name)
        if run is None:
            table.add_row(sync.name, sync.audience.name, sync.destination, sync.mode, sync.consent or "none",
                          "never run", "", "", "", "", "")
            continue
        table.add_row(sync.name, sync.audience.name, sync.destination, sync.mode, sync.consent or "none",
                      run["status"], _when(run["started_at"]), _count(run["holds"]), _count(run["confirmed"]),
                      f"{_count(run['confirmed_total'])} in {run['runs']} run{'s' if run['runs'] != 1 else ''}",
                      _count(run["pending_rejects"]))
    for broken in all_syncs.broken:
        table.add_row(broken.name, broken.audience, broken.destination or "", "", "", "broken declaration",
                      "", "", "", "", "")
    if not all_syncs.syncs and not all_syncs.broken:
        print("no syncs declared: add meta.activations to an aud_* (or conv_*, catalog_*) model's YAML and run `make dbt-parse` "
              "(docs/syncs.md)")
        return EXIT_OK
    _stdout().print(table)
    return _report_broken(args.command, all_syncs)


def cmd_plan(args: argparse.Namespace) -> int:
    from activations.engine.guards import check_guards
    from activations.engine.review import plan_for_review, read_review, write_review

    all_syncs, _ = _declared()
    sync = _find(args.sync, all_syncs)
    _require_warehouse(args)
    with _open_warehouse(args) as con:
        plan = _engine_call(lambda: plan_for_review(con, sync, datetime.now(UTC), full_resync=args.full_resync),
                            sync)
        path = write_review(con, sync, plan, settings.data_dir() / "plans", full_resync=args.full_resync)
        refusal = check_guards(con, sync, plan)
    review = read_review(path)  # print what the reviewer will read
    print(plan)
    if review.left_out:
        print(f"not sent by mode {sync.mode}: " + ", ".join(f"{n:,} {op}" for op, n in review.left_out.items()))
    _print_samples(review.samples)
    if refusal:
        print(f"note: applying this plan will be refused unless --force: {refusal}", file=sys.stderr)
    print(f"wrote {path}\nreview it, then: attiva apply {path}")
    return EXIT_OK


def _print_samples(samples: dict[str, list[dict]]) -> None:
    console = _stdout()
    for operation, rows in samples.items():
        if not rows:
            continue
        table = _table(*rows[0].keys())
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(f"{operation}: first {len(rows)}")
        console.print(table)


def _engine_call(call, sync):
    """Run an engine step; an audience the warehouse does not have is a usage error, not a traceback."""
    import duckdb

    try:
        return call()
    except Exception as exc:
        # DuckDB's CatalogException, Spark's AnalysisException TABLE_OR_VIEW_NOT_FOUND
        missing = isinstance(exc, duckdb.CatalogException) or "TABLE_OR_VIEW_NOT_FOUND" in str(exc)
        if not missing:
            raise
        first = str(exc).splitlines()[0]
        raise UsageError(f"{sync.audience.relation} cannot be read ({first}): run `attiva build` first") from None


def cmd_apply(args: argparse.Namespace) -> int:
    from activations.engine.review import read_review

    try:
        review = read_review(args.plan_file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    all_syncs, destinations = _declared()
    sync = _find(review.sync, all_syncs)
    if sync.mode != review.mode:
        print(f"attiva apply: {sync.name} is now declared {sync.mode}, the plan was made for {review.mode}; "
              f"run `attiva plan {sync.name}` again", file=sys.stderr)
        return EXIT_REFUSED
    _require_warehouse(args)
    return _run_one(sync, args, destinations, review=review, force=args.force, full_resync=review.full_resync,
                    expect_fingerprint=review.fingerprint, reviewed_plan=review.plan_id)


def cmd_sync(args: argparse.Namespace) -> int:
    if bool(args.sync) == bool(args.all):
        raise UsageError("name one sync, or pass --all to run every declared sync")
    all_syncs, destinations = _declared()
    chosen = all_syncs.syncs if args.all else [_find(args.sync, all_syncs)]
    _require_warehouse(args)
    if _target(args) == "spark":  # one Spark session for every sync: starting one takes seconds
        with _open_warehouse(args) as con:
            codes = [_run_one(sync, args, destinations, force=args.force, full_resync=args.full_resync, con=con)
                     for sync in chosen]
    else:  # a connection per sync: other processes may write the DuckDB file between two syncs
        codes = [_run_one(sync, args, destinations, force=args.force, full_resync=args.full_resync)
                 for sync in chosen]
    if args.all:  # the broken ones did not run: say why, and do not exit 0
        codes.append(_report_broken(args.command, all_syncs))
    return max(codes, key=SEVERITY.__getitem__, default=EXIT_OK)


def cmd_retry(args: argparse.Namespace) -> int:
    all_syncs, destinations = _declared()
    sync = _find(args.sync, all_syncs)
    _require_warehouse(args)
    return _run_one(sync, args, destinations, only_rejected=True)


def _run_one(sync, args: argparse.Namespace, destinations, review=None, **options) -> int:
    """Run one sync with a progress bar on stderr; print the result; the exit code it earns."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from activations import syncs
    from activations.destinations.base import DestinationConfigError
    from activations.engine.review import CHANGED
    from activations.engine.run import SyncFailed, SyncRefused
    from activations.engine.state import DELIVERED_EXCEPT_INVALID, SUCCESS
    from activations.progress import SendingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), SendingColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=False)
    task = progress.add_task(sync.name, total=None, status=None)

    def on_progress(status) -> None:
        if not progress.live.is_started:
            progress.start()  # only once rows flow: a refused or empty run shows no bar
        progress.update(task, completed=status.done, total=status.total or None, status=status)

    try:
        result = _engine_call(lambda: syncs.run(sync, warehouse_path=args.warehouse, destinations=destinations,
                                                on_progress=on_progress, target=_target(args), **options), sync)
    except DestinationConfigError as exc:
        raise UsageError(str(exc)) from None
    except SyncRefused as exc:
        print(f"attiva {args.command}: {exc.result.error}", file=sys.stderr)
        if review is not None and CHANGED in (exc.result.error or "") and exc.result.plan is not None:
            after = exc.result.plan
            changes = [f"{name} {review.counts.get(name, 0):,} -> {getattr(after, name):,}"
                       for name in ("adds", "updates", "removes", "unchanged", "eligible_rows")]
            print(f"  reviewed ({review.path.name}) -> now: " + ", ".join(changes), file=sys.stderr)
        return EXIT_REFUSED
    except SyncFailed as exc:
        print(exc.result)
        return EXIT_NOT_DELIVERED
    finally:
        progress.stop()
    print(result)
    if result.rejected or result.invalid:
        print(f"  see why: attiva status {sync.name}; resend the rejected rows: attiva retry {sync.name}")
    return {SUCCESS: EXIT_OK, DELIVERED_EXCEPT_INVALID: EXIT_INVALID_ROWS}.get(result.status, EXIT_NOT_DELIVERED)


def cmd_status(args: argparse.Namespace) -> int:
    if args.sync:
        _find(args.sync, _declared()[0])
    if _target(args) == "duckdb" and not Path(args.warehouse).exists():
        print("no runs yet: the warehouse does not exist")
        return EXIT_OK
    from activations.engine.state import ensure_state

    where, params = ("where sync_name = ?", [args.sync]) if args.sync else ("", [])
    with _open_warehouse(args) as con:
        ensure_state(con)
        runs = con.execute(f"""
            select sync_name, status, started_at, duration_seconds, planned, confirmed, rejected, invalid, error
            from activation.sync_runs {where} order by started_at desc limit 10""", params).fetchall()
        reasons = con.execute(f"""
            select sync_name, kind, reason, max(http_status), count(*) as n
            from activation.sync_rejects {where}
            group by sync_name, kind, reason order by n desc, sync_name, reason limit 10""", params).fetchall()
    console = _stdout()
    if not runs:
        print("no runs yet" + (f" of {args.sync}" if args.sync else ""))
        return EXIT_OK
    table = _table("sync", "status", "started (UTC)", "seconds", "planned", "confirmed", "rejected", "invalid",
                   "error")
    for name, status, started, seconds, planned, confirmed, rejected, invalid, error in runs:
        table.add_row(name, status, _when(started), f"{seconds:.1f}" if seconds is not None else "",
                      _count(planned), _count(confirmed), _count(rejected), _count(invalid),
                      (error or "").splitlines()[0][:100] if error else "")
    console.print("recent runs")
    console.print(table)
    if reasons:
        table = _table("sync", "kind", "reason", "http status", "rows")
        for name, kind, reason, http_status, rows in reasons:
            table.add_row(name, kind, reason or "", "" if http_status is None else str(http_status), _count(rows))
        console.print("rows not delivered, by reason (attiva retry SYNC resends them)")
        console.print(table)
    else:
        print("no rows waiting to be resent")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attiva", description="Warehouse-native marketing activation.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ing = sub.add_parser("ingest", help="load new landing files into the warehouse's raw tables")
    ing.add_argument("--landing", type=Path, default=None, help="landing folder (default ATTIVA_LANDING)")
    ing.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    ing.set_defaults(handler=cmd_ingest)

    bld = sub.add_parser("build", help="run dbt build (models and tests) on the warehouse")
    bld.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    bld.add_argument("--as-of", type=settings.instant, default=None, help="the pipeline's 'now' (default ATTIVA_AS_OF)")
    bld.add_argument("--select", default=None, help="dbt selection, e.g. 'aud_champions+'")
    bld.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    bld.add_argument("--verbose", action="store_true", help="show dbt's own output")
    bld.add_argument("--target", default=None, choices=["duckdb", "spark"],
                     help="dbt target (default ATTIVA_DBT_TARGET, else duckdb); spark copies the raw tables "
                          "from the DuckDB warehouse into local Spark first (needs the `spark` extra and Java 17)")
    bld.set_defaults(handler=cmd_build)

    summ = sub.add_parser("summary", help="print customers, merges and audience sizes")
    summ.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    summ.set_defaults(handler=cmd_summary)

    con = sub.add_parser("contract", help="print the landing contract (folders, formats, columns) as Markdown")
    con.set_defaults(handler=cmd_contract)

    rpt = sub.add_parser("report", help="write the marketer's HTML report (one self-contained file)",
                         description="Campaigns, uplift against the holdout, audience sizes over time, the lead funnel "
                                     "and sync health, from the measurement models; prints the file's path.")
    rpt.add_argument("--out", type=Path, default=None,
                     help="the HTML file (default <ATTIVA_DATA>/report/attiva-report.html)")
    rpt.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    rpt.set_defaults(handler=cmd_report)

    fbk = sub.add_parser("feedback", help="land email engagement events (the ESP's event feed or a SendGrid webhook batch)",
                         description="Write the SendGrid Event Webhook events the ESP's event feed has since the last "
                                     "call (ATTIVA_ESP_EVENTS_URL), or of --events, a batch "
                                     "SendGrid posted, as one landing file in <landing>/email_engagement/; the next "
                                     "ingestion loads it and the next messaging pass suppresses hard bounces, "
                                     "unsubscribes and complaints.")
    fbk.add_argument("--events", type=Path, default=None, help="a SendGrid Event Webhook batch (JSON array)")
    fbk.add_argument("--landing", type=Path, default=None, help="landing folder (default ATTIVA_LANDING)")
    fbk.set_defaults(handler=cmd_feedback)

    lds = sub.add_parser("leads", help="Meta Lead Ads: read the leads the leadgen webhook left pending")
    lds_sub = lds.add_subparsers(dest="leads_command", required=True, metavar="ACTION")
    ftc = lds_sub.add_parser("fetch", help="read every pending lead from the Graph API and land it",
                             description="Read every lead `attiva serve`'s leadgen webhook could not read yet "
                                         "(<landing>/_meta_leads/pending/) from the Graph API (ATTIVA_META_PAGE_TOKEN, "
                                         "ATTIVA_META_GRAPH_URL) and land it in <landing>/social/leads/; what fails "
                                         "stays pending. Exit 1 while any is pending (docs/social-leads.md).")
    ftc.add_argument("--landing", type=Path, default=None, help="landing folder (default ATTIVA_LANDING)")
    ftc.set_defaults(handler=cmd_leads_fetch)

    lis = sub.add_parser("listen", help="web listening: fetch the RSS/Atom feeds of listening.yml and land their items",
                         description="Read every feed of listening.yml (ATTIVA_LISTENING) and land its items as one "
                                     "JSON-lines file in <landing>/listening/mentions/; the next ingestion and build "
                                     "deduplicate and score them (docs/listening.md). A feed that cannot be fetched or "
                                     "parsed is named with the reason and the others still land: exit 1 if any failed.")
    lis.add_argument("--config", type=Path, default=None, help="listening file (default ATTIVA_LISTENING, listening.yml)")
    lis.add_argument("--landing", type=Path, default=None, help="landing folder (default ATTIVA_LANDING)")
    lis.set_defaults(handler=cmd_listen)

    rtm = sub.add_parser("realtime", help="always on: new events to triggered messages in seconds",
                         description="Watch the landing folder's events (what `attiva serve` collects) and, for each "
                                     "new batch, load it, run the event-driven triggers' models with dbt kept in "
                                     "memory, and send what is due for those campaigns, with every guarantee of a "
                                     "full run (consent, caps, quiet hours, the ledger's one decision per "
                                     "occurrence). Runs until SIGTERM or Ctrl-C (docs/realtime.md).")
    rtm.add_argument("--landing", type=Path, default=None, help="landing folder (default ATTIVA_LANDING)")
    rtm.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    rtm.add_argument("--poll", type=float, default=0.1, help="seconds between looks at the event folders (default 0.1)")
    rtm.add_argument("--due-every", type=float, default=30.0,
                     help="seconds between passes when no event arrives, for steps whose delay ends (default 30)")
    rtm.add_argument("--once", action="store_true", help="one turn, then exit (1 if it failed)")
    rtm.set_defaults(handler=cmd_realtime)

    warehouse_help = "DuckDB file (default ATTIVA_WAREHOUSE)"
    target_help = ("warehouse the engine works on: duckdb (the file) or spark (the local Spark target, "
                   "ATTIVA_SPARK_DIR); default ATTIVA_DBT_TARGET, else duckdb")
    lst = sub.add_parser("syncs", help="list the declared syncs with their last run",
                         description="List the syncs declared in the audiences' YAML (dbt manifest) with their "
                                     "last status, last run and rows still rejected.")
    lst.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    lst.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    lst.set_defaults(handler=cmd_syncs)

    pln = sub.add_parser("plan", help="show what a sync would send and write it as a reviewable file",
                         description="Compute a sync's plan (adds, updates, removes) without sending anything; "
                                     "print counts and sample rows and write <ATTIVA_DATA>/plans/<sync>__<plan>.json "
                                     "for `attiva apply`.", epilog=EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    pln.add_argument("sync", metavar="SYNC", help="a declared sync (see `attiva syncs`)")
    pln.add_argument("--full-resync", action="store_true", help="plan to resend every eligible row")
    pln.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    pln.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    pln.set_defaults(handler=cmd_plan)

    apl = sub.add_parser("apply", help="run a reviewed plan file; refuses if the plan changed since",
                         description="Recompute the plan of the file's sync and run it only if it is the plan "
                                     "that was reviewed (same rows to send); otherwise exit 3 and say what changed.",
                         epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    apl.add_argument("plan_file", metavar="PLAN_FILE", type=Path, help="a file written by `attiva plan`")
    apl.add_argument("--force", action="store_true", help="go ahead even if a guard refuses the removals")
    apl.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    apl.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    apl.set_defaults(handler=cmd_apply)

    syn = sub.add_parser("sync", help="run a sync (or every sync) now",
                         description="Plan and send a sync in one go, with a progress bar on stderr.",
                         epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    syn.add_argument("sync", metavar="SYNC", nargs="?", help="a declared sync (see `attiva syncs`)")
    syn.add_argument("--all", action="store_true", help="run every declared sync, one after the other")
    syn.add_argument("--full-resync", action="store_true", help="resend every eligible row")
    syn.add_argument("--force", action="store_true", help="go ahead even if a guard refuses the removals")
    syn.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    syn.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    syn.set_defaults(handler=cmd_sync)

    rty = sub.add_parser("retry", help="resend only the rows the destination rejected",
                         description="Resend the rows of a sync that the destination rejected or that were set "
                                     "aside (see `attiva status SYNC`), and nothing else.",
                         epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    rty.add_argument("sync", metavar="SYNC", help="a declared sync (see `attiva syncs`)")
    rty.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    rty.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    rty.set_defaults(handler=cmd_retry)

    sts = sub.add_parser("status", help="recent sync runs and why rows were not delivered",
                         description="The last 10 runs (of all syncs, or of SYNC) and the most common reasons "
                                     "rows are waiting to be resent.")
    sts.add_argument("sync", metavar="SYNC", nargs="?", help="only this sync")
    sts.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    sts.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    sts.set_defaults(handler=cmd_status)
    msg = sub.add_parser("messages", help="triggered messages per campaign: sent, suppressed (why), held out, "
                                          "failed, unknown",
                         description="Per campaign: sent, suppressed (by reason), held out, failed, unknown (a pass "
                                     "ended while they were in flight), waiting. `attiva messages why CUSTOMER "
                                     "[CAMPAIGN]` lists every ledger row of that person (a customer id or an email) "
                                     "with its reason. Exit 1 from `why` when the person has none. `attiva messages "
                                     "variants CAMPAIGN`: its A/B tests, each variant's rate, allocation and "
                                     "what it would earn if sent to all.")
    msg.add_argument("--warehouse", default=str(settings.warehouse_path()), help="the DuckDB file")
    msg.set_defaults(handler=cmd_messages, action=None)
    msg_sub = msg.add_subparsers(dest="action", metavar="why|variants")
    msg_why = msg_sub.add_parser("why", help="every ledger row of one person, with its reason")
    msg_why.add_argument("customer", metavar="CUSTOMER", help="a customer id, or an email address")
    msg_why.add_argument("campaign", metavar="CAMPAIGN", nargs="?", help="only this campaign")
    msg_why.add_argument("--warehouse", default=argparse.SUPPRESS, help="the DuckDB file")
    msg_var = msg_sub.add_parser(
        "variants", help="an A/B test's variants: observed rate, allocation, what sending one to all would earn",
        description="Per A/B step of CAMPAIGN and variant: messages sent long enough ago to count, their reward "
                    "rate, the allocation its latest planned message had, and the inverse-propensity estimate "
                    "(from the ledger's logged probabilities) of the rate if every customer got that variant; "
                    "then the even split's. Exit 1 when the campaign has no A/B step in the ledger.")
    msg_var.add_argument("campaign", metavar="CAMPAIGN")
    msg_var.add_argument("--reward", default="clicked", choices=["clicked", "converted"],
                         help="a click on the message (default), or an order attributed to it")
    msg_var.add_argument("--warehouse", default=argparse.SUPPRESS, help="the DuckDB file")

    cmp = sub.add_parser("campaigns", help="pause or resume a campaign; which are paused",
                         description="`attiva campaigns` lists the paused campaigns; `pause CAMPAIGN` stops its "
                                     "sending from the next messaging pass (its occurrences are still planned, its due "
                                     "messages wait), `resume CAMPAIGN` lets them go out (those expired meanwhile are "
                                     "suppressed). Recorded with who and when in activation.campaign_actions.")
    cmp.add_argument("--warehouse", default=str(settings.warehouse_path()), help="the DuckDB file")
    cmp.set_defaults(handler=cmd_campaigns, action=None)
    cmp_sub = cmp.add_subparsers(dest="action", metavar="pause|resume")
    for verb, said in (("pause", "send none of its messages until resumed"), ("resume", "send its messages again")):
        one = cmp_sub.add_parser(verb, help=f"{said}")
        one.add_argument("campaign", metavar="CAMPAIGN", help="a declared campaign (e.g. abandoned_cart)")
        one.add_argument("--warehouse", default=argparse.SUPPRESS, help="the DuckDB file")

    idn = sub.add_parser("identity", help="why a customer is who they are; probable matches to review",
                         description="`attiva identity CUSTOMER` (a customer id, or an email, phone, CRM contact, "
                                     "shop account or device id) prints the records that make up the customer, the "
                                     "edges that joined them (source, first and last seen) and the identifiers set "
                                     "aside: shared (how many people, the limit) or placeholder. Exit 1 when no "
                                     "customer has it. `--review` lists the pairs of records probabilistic matching "
                                     "scored in the review band; `--accept PAIR_ID` links the two records at the next "
                                     "build, `--reject PAIR_ID` keeps them apart for good (docs/identity-review.md). "
                                     "Exit 1 for an unknown pair.")
    idn.add_argument("customer", metavar="CUSTOMER", nargs="?", help="a customer id or any identifier value")
    idn.add_argument("--review", action="store_true", help="list the pairs waiting for a decision")
    idn.add_argument("--limit", type=int, default=50, metavar="N",
                     help="with --review: the N most probable pairs (default 50; 0 lists them all)")
    decide = idn.add_mutually_exclusive_group()
    decide.add_argument("--accept", metavar="PAIR_ID", help="the two records are one person: link them")
    decide.add_argument("--reject", metavar="PAIR_ID", help="the two records are different people: never link them")
    idn.add_argument("--warehouse", type=Path, default=None, help=warehouse_help)
    idn.add_argument("--target", default=None, choices=["duckdb", "spark"], help=target_help)
    idn.set_defaults(handler=cmd_identity)

    fgt = sub.add_parser("forget", help="erase a person's personal data; never contact them again",
                         description="Erase a person (by email or customer id) from the warehouse: their addresses "
                                     "go on the suppression list (hashed), personal columns of their raw rows are "
                                     "nulled, derived rows deleted, planned messages suppressed, and every "
                                     "destination that may hold them is asked to delete them with its own deletion "
                                     "API (a tracked request, retried by every sync run until each confirmed). "
                                     "Exit 1 if nobody matched, 3 if a destination has not confirmed yet.")
    fgt.add_argument("who", nargs="?", help="an email address or a customer id (cus_...)")
    fgt.add_argument("--status", action="store_true", help="show the erasures destinations have not confirmed yet")
    fgt.add_argument("--all", action="store_true", help="with --status: confirmed erasures too")
    fgt.add_argument("--retry", action="store_true", help="ask every destination with a pending erasure again")
    fgt.add_argument("--warehouse", default=str(settings.warehouse_path()), help="the DuckDB file")
    fgt.set_defaults(handler=cmd_forget)

    from activations.serve.command import DESCRIPTION as SERVE_DESCRIPTION
    from activations.serve.command import add_arguments as serve_arguments
    from activations.serve.command import run_from_args as run_serve

    srv = sub.add_parser("serve", help=f"serve the personalization API and event collection (127.0.0.1:{settings.serve_port()})",
                         description=SERVE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve_arguments(srv)
    srv.add_argument("--warehouse", type=Path, default=None, help="with --build: DuckDB file (default ATTIVA_WAREHOUSE)")
    srv.set_defaults(handler=run_serve)

    from activations.studio.command import DESCRIPTION as STUDIO_DESCRIPTION
    from activations.studio.command import add_arguments as studio_arguments
    from activations.studio.command import run_from_args as run_studio

    std = sub.add_parser("studio", help=f"the marketer's console: audiences and customers in the browser "
                                        f"(127.0.0.1:{settings.studio_port()})",
                         description=STUDIO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    studio_arguments(std)
    std.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default ATTIVA_WAREHOUSE)")
    std.set_defaults(handler=run_studio)
    add_plugin_commands(sub)
    return parser


PLUGIN_COMMANDS = "attiva.commands"


def add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Commands other packages register under the `attiva.commands` entry point (`generate`, `demo`
    and `sandbox` come with the generator, the demo and the sandbox; pyproject.toml): the product
    names none of them, and a production install without them simply lacks those commands."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=PLUGIN_COMMANDS), key=lambda e: e.name):
        try:
            register = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken package loses its command, not the CLI
            broken = sub.add_parser(entry.name, help=f"(unavailable: {type(exc).__name__})")
            broken.set_defaults(handler=_unavailable(entry.name, entry.value, exc))
            continue
        register(sub)


def _unavailable(name: str, where: str, exc: Exception) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(f"attiva {name}: unavailable, {where} could not be loaded: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return EXIT_USAGE
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "landing", "unset") is None:
        args.landing = settings.landing_path()
    if getattr(args, "warehouse", "unset") is None:
        args.warehouse = settings.warehouse_path()
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        print(f"attiva {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if type(exc).__name__ == "SparkUnavailable":  # --target spark without pyspark or Java
            print(f"attiva {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        # DuckDB lets one process at a time have the file: every command waits in line for it
        # (ATTIVA_WAREHOUSE_WAIT) and only gives up after that, naming the holder.
        if type(exc).__name__ == "WarehouseBusy":
            print(f"attiva {args.command}: {exc}", file=sys.stderr)
            return EXIT_NOT_DELIVERED
        raise


if __name__ == "__main__":
    sys.exit(main())
