"""One "now" per run: the first step that needs it pins it on the run as a tag; later steps
(the second dbt invocation, syncs) read the tag, so a whole run agrees on `as_of` even when
its steps start minutes apart. A tag set at launch (UI, sensor, replay) wins over
ATTIVA_AS_OF, which wins over the current time (`activations.settings.as_of`)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from activations import settings

AS_OF_TAG = "attiva/as_of"


def parse_as_of(value: str) -> datetime:
    """An ISO 8601 timestamp, UTC when it carries no offset."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run_as_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> datetime:
    """The run's `as_of`, pinned on the run the first time it is asked for."""
    # Read the tags from the instance: the run object a step holds predates tags added by earlier steps.
    run = context.instance.get_run_by_id(context.run.run_id) or context.run
    if tag := run.tags.get(AS_OF_TAG):
        return parse_as_of(tag)
    as_of = settings.as_of()
    context.instance.add_run_tags(context.run.run_id, {AS_OF_TAG: as_of.isoformat()})
    return as_of
