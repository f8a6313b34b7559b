"""The event path in Dagster: `fresh_events` (sensors.py, every 5 s) starts an `event_messages` run
for new event files; its one step loads them, runs the event-driven triggers' models and sends
what is due for those campaigns (activations/messaging/fresh_events.py says what and why).

One op, not a slice of the asset graph, for speed: one step and one dbt invocation per run, in its
own target folder. It reports what it did as asset *observations* on `raw/events` and
`messages/<campaign>` (visible in each asset's history), not materializations: those would wake
the declarative automation of everything downstream of the events (the customer 360, audiences,
the report) after every event run, and each such catch-up run would hold the warehouse pool in
front of the next event. The rest of the graph catches up through the landing sensor's run,
which event files alone start at most every `EVENTS_CATCH_UP_MINUTES` (sensors.py).

Event runs carry `dagster/priority`, so the run queue starts them before waiting full refreshes;
like every warehouse writer they still wait for a run already holding the warehouse.
"""


import dagster as dg

from activations import settings
from activations.messaging import fresh_events, ledger
from activations.messaging.channels import load_usable_channels
from activations.messaging.policy import load_settings
from activations.messaging.templates import Templates
from orchestration.defs.dbt import MANIFEST
from orchestration.defs.messages import channel_problem, declared_triggers, message_key
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse
from orchestration.lib.clock import AS_OF_TAG, run_as_of

EVENT_TRIGGERS = fresh_events.event_driven(declared_triggers(), MANIFEST)
RAW_EVENTS_KEY = dg.AssetKey(["raw", "events"])
PRIORITY = "10"  # above the default 0 of every other run


def _pinned(context: dg.OpExecutionContext) -> bool:
    """Whether this run's as_of was chosen (a tag at launch, or ATTIVA_AS_OF) rather than "now"."""
    run = context.instance.get_run_by_id(context.run.run_id) or context.run
    return AS_OF_TAG in run.tags or settings.as_of_pinned()


@dg.op(pool=WAREHOUSE_POOL)
def send_event_messages(context: dg.OpExecutionContext, warehouse: Warehouse, landing: Landing) -> None:
    """Load new event files, run the event-driven triggers and what they read, send what is due."""
    pinned = _pinned(context)
    now = run_as_of(context)
    channels, channel_errors = load_usable_channels()
    # A channel broken since loading stops only the campaigns it sends (they fail below, after the others).
    ready = [t for t in EVENT_TRIGGERS if not channel_problem(t, channels, channel_errors)]
    try:
        report = fresh_events.run(landing.folder(), warehouse.file(), ready, channels, Templates(),
                                  load_settings(), now, pinned=pinned)
    except fresh_events.FreshEventsError as exc:
        raise dg.Failure(description=str(exc)) from None
    finally:
        for channel in channels.values():
            channel.close()
    context.log.info(f"event path: {report}")
    timings = {f"seconds_{step}": round(s, 2) for step, s in report.seconds.items()}
    context.log_event(dg.AssetObservation(asset_key=RAW_EVENTS_KEY, metadata={
        "event_path_files_loaded": report.files_loaded, "event_path_rows_loaded": report.rows_loaded,
        "event_path_rows_quarantined": report.rows_quarantined}))
    with warehouse.connect(read_only=True) as con:
        counts = ledger.counts(con)
    outcomes = report.messages.outcomes if report.messages is not None else {}
    for trigger in ready:
        metadata = {f"ledger_{state}": n for state, n in sorted(counts.get(trigger.campaign, {}).items())}
        metadata.update({f"this_run_{k.split(' ')[0]}": n
                         for k, n in sorted(outcomes.get(trigger.campaign, {}).items())})
        context.log_event(dg.AssetObservation(asset_key=message_key(trigger),
                                              metadata={**metadata, **timings, "path": "event"}))
    unsent = {t.campaign: channel_problem(t, channels, channel_errors) for t in EVENT_TRIGGERS if t not in ready}
    if report.messages is not None:
        unsent.update(report.messages.stopped_campaigns(ready))  # refused credentials, a wrong URL, no connection
    if unsent:
        raise dg.Failure(description="; ".join(f"{campaign} not sent: {why}" for campaign, why in unsent.items()),
                         allow_retries=False)


@dg.job(description="New event files to triggered messages: load them, run the event-driven triggers' models "
                    "(no tests), send what is due for those campaigns.",
        tags={"attiva/trigger": "events", "dagster/priority": PRIORITY})
def event_messages():
    send_event_messages()


def definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[event_messages])
