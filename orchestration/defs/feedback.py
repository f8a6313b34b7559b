"""Engagement feedback: what recipients did with the messages comes back into the warehouse by itself.

`feedback/engagement_events` runs after the sends (every message asset is upstream of it) and
before the report: it asks the ESP's event feed for what happened since the last call
(ATTIVA_ESP_EVENTS_URL; the demo sets the sandbox's; unset, landing files only), writes them as a
landing file in `email_engagement/`, loads that folder's new files (the feed's, and any ESP export
dropped there) into `raw.email_engagement`, and adds hard bounces, unsubscribes and complaints to
the suppression list. The measurement models are views over that table, so the report that follows
in the same run shows delivered, opened, clicked, bounced and unsubscribed.

When it runs: in every run of the whole graph (the demo's, the landing sensor's, the daily one), and
every 15 minutes by itself, because real recipients open mail hours after it went out. Its landing file
does not start a refresh at once: the landing sensor leaves files this asset loads to the next refresh
of the whole graph (within 15 minutes), which rebuilds the marts that read engagement.
"""

import dagster as dg

from activations.messaging.feedback import FeedbackError, collect
from orchestration.defs.messages import declared_triggers, message_key
from orchestration.defs.resources import WAREHOUSE_POOL, Landing, Warehouse
from orchestration.lib.clock import run_as_of

FEEDBACK_KEY = dg.AssetKey(["feedback", "engagement_events"])
FEEDBACK_GROUP = "feedback"


def _campaign_keys() -> list[dg.AssetKey]:
    return [message_key(t) for t in declared_triggers()]  # a broken one's asset always fails


def definitions() -> dg.Definitions:
    """The feedback asset, and the job and schedule that collect engagement between sends."""

    @dg.asset(key=FEEDBACK_KEY, deps=_campaign_keys(), group_name=FEEDBACK_GROUP, kinds={"python", "duckdb"},
              pool=WAREHOUSE_POOL)  # it writes raw.email_engagement and the suppression list
    def engagement_events(context: dg.AssetExecutionContext, warehouse: Warehouse,
                          landing: Landing) -> dg.MaterializeResult:
        """New email engagement (delivered, open, click, bounce, unsubscribe, complaint) landed and loaded;
        bounces, unsubscribes and complaints added to the suppression list."""
        try:
            report = collect(landing.folder(), warehouse.file(), now=run_as_of(context))
        except FeedbackError as exc:
            raise dg.Failure(description=str(exc), allow_retries=exc.retry) from None
        context.log.info(str(report))
        for problem in report.problems:
            context.log.error(f"engagement landing file could not be loaded: {problem}")
        metadata: dict = {
            "feed": report.feed,
            "events": dg.MetadataValue.int(sum(report.events.values())),
            **{f"events_{kind}": dg.MetadataValue.int(n) for kind, n in sorted(report.events.items())},
            "files_loaded": dg.MetadataValue.int(report.files_loaded),
            "rows_loaded": dg.MetadataValue.int(report.rows_loaded),
            "rows_quarantined": dg.MetadataValue.int(report.rows_quarantined),
            "suppressed_added": dg.MetadataValue.int(report.suppressed),
        }
        if report.landed:
            metadata["landing_file"] = dg.MetadataValue.path(str(report.landed))
        return dg.MaterializeResult(metadata=metadata)

    job = dg.define_asset_job(
        "engagement_feedback", selection=dg.AssetSelection.assets(FEEDBACK_KEY),
        description="Collect email engagement since the last call and update the suppression list.",
        tags={"attiva/trigger": "engagement_feedback"})
    schedule = dg.ScheduleDefinition(name="engagement_feedback_every_15_minutes", job=job,
                                      cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
    return dg.Definitions(assets=[engagement_events], jobs=[job], schedules=[schedule])
