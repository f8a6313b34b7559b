"""The campaign pages: every declared campaign (the trg_* models' messaging policies) with its ledger
counts, pause state and uplift; one campaign's steps with their variants, allocation and counts, the
report's performance, uplift and A/B sections for it, and each step's message rendered by the engine
(preview.py) for one of the trigger's occurrences and for an edge case (no name, no recommendations).

A viewer sees the rendering with the personal data masked before rendering (names hidden, email and
phone as hints), the same masking as the customer pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activations import settings
from activations.messaging import actions, allocation, preview, status
from activations.messaging.campaigns import Campaigns, declared_campaigns
from activations.messaging.delivery import OutgoingMessage
from activations.messaging.policy import Settings, Step, Trigger, load_settings
from activations.messaging.templates import TemplateError, Templates
from activations.messaging.validate import payload_name
from activations.report import data as report_data
from activations.report import html as report_html
from activations.report import snapshots
from activations.studio.privacy import mask_text, masked_profile


@dataclass(frozen=True)
class Declared:
    campaigns: Campaigns
    problem: str | None = None  # why the manifest or messaging files could not be read

    def find(self, campaign: str) -> tuple[Trigger | None, str | None]:
        """The campaign's trigger, or why it is broken; (None, None) if no such campaign is declared."""
        for trigger in self.campaigns.triggers:
            if trigger.campaign == campaign:
                return trigger, None
        for broken in self.campaigns.broken:
            if broken.campaign == campaign:
                return None, broken.reason
        return None, None


def declared(manifest_path: Path | None = None) -> Declared:
    """The campaigns the dbt manifest declares, each checked as a pass would (policy, channel, templates);
    read again only when the manifest, a template, channels.yml or messaging.yml changed (reading and
    checking them takes 100 ms, a page's whole budget at scale)."""
    from activations.manifest import load_manifest

    path = manifest_path or settings.manifest_path()
    signature = _signature([path, settings.channels_path(), settings.messaging_path(),
                            *sorted(settings.templates_dir().rglob("*"))])
    if _declared_cache.get("signature") == signature:
        return _declared_cache["declared"]
    try:
        found = Declared(declared_campaigns(load_manifest(path)))
    except (OSError, ValueError) as exc:
        found = Declared(Campaigns([]), f"the declared campaigns could not be read: {exc}")
    _declared_cache.update(signature=signature, declared=found)
    return found


_declared_cache: dict[str, Any] = {}


def _signature(paths: list[Path]) -> tuple:
    """What changes when one of these files does: each one's size and modification time (or its absence)."""
    stats = []
    for path in paths:
        try:
            stat = path.stat()
            stats.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stats.append((str(path), None, None))
    return tuple(stats)


@dataclass
class CampaignRow:
    campaign: str
    trigger: Trigger | None
    broken: str | None
    pause: actions.Pause | None
    counts: dict[str, int]
    uplift: dict[str, Any] | None

    def uplift_cells(self) -> tuple[str, str, str]:
        """Uplift, its 95 % interval and the verdict, worded as the report words them (HTML)."""
        r = self.uplift
        if not r:
            return "–", "–", '<span class="muted">nothing sent or held out yet</span>'
        return (report_html.points(r["conversion_uplift"]),
                f"{report_html.points(r['conversion_uplift_ci_low'])} to "
                f"{report_html.points(r['conversion_uplift_ci_high'])}",
                report_html.uplift_verdict(r["conversion_uplift_ci_low"], r["conversion_uplift_ci_high"],
                                           bool(r["too_small_to_say"]), int(r["holdout_customers"] or 0),
                                           int(r.get("customers_waiting") or 0)))


@dataclass(frozen=True)
class MeasuredFrom:
    """Where a page's measurement comes from: the copy the last run's report kept (schema `measured`,
    fast) or the views, computed now (seconds at 1M customers); and that, in words."""

    schema: str
    sentence: str
    live: bool


def measured_from(con, live: bool = False) -> MeasuredFrom:
    """The last report's copy unless `live` or there is none (report/snapshots.py)."""
    snapshot = None if live else snapshots.latest(con)
    if snapshot is None:
        return MeasuredFrom("measurement", "Measured now, from the measurement views" + (
            "." if live else " (no report of a run has kept a copy yet)."), True)
    said = f"Measured at {snapshot.taken_at:%Y-%m-%d %H:%M} UTC, by the report of the last run"
    if snapshot.ledger_changed_since:
        said += ("; messages were planned, sent or settled since, and are not counted yet (the report of the next run "
                 "counts them, or measure now)")
    return MeasuredFrom(snapshots.SCHEMA, said + ".", False)


def overview(con, found: Declared, source: MeasuredFrom | None = None) -> tuple[list[CampaignRow], str]:
    """Every declared campaign (and any the ledger has that is no longer declared), and the report's uplift
    section for them all."""
    source = source or measured_from(con)
    # The list shows the uplift section only: the performance and A/B views are not read for it.
    measured = report_data.campaign_measurement(con, models=("campaign_uplift",), schema=source.schema)
    uplift = {r["campaign"]: r for r in measured.uplift}
    counts = {s.campaign: s.counts for s in status.campaigns(con)}
    paused = actions.paused(con)
    rows = [CampaignRow(t.campaign, t, None, paused.get(t.campaign), counts.get(t.campaign, {}), uplift.get(t.campaign))
            for t in found.campaigns.triggers]
    rows += [CampaignRow(b.campaign, None, b.reason, paused.get(b.campaign), counts.get(b.campaign, {}),
                         uplift.get(b.campaign)) for b in found.campaigns.broken]
    return sorted(rows, key=lambda r: r.campaign), report_html.uplift_section(measured)


@dataclass
class Rendering:
    label: str
    template: str
    subject: str | None = None
    html: str | None = None
    error: str | None = None
    text: str | None = None  # an SMS (no subject, no HTML): its text is shown as it will be sent


@dataclass
class StepView:
    step: Step
    variants: list[dict[str, Any]]  # template, allocated (probability now, None if one template), counts
    renderings: list[Rendering] = field(default_factory=list)
    test_recipient: str | None = None  # what a test of this step goes to: "email", "phone", None (no test send)


@dataclass
class CampaignDetail:
    campaign: str
    trigger: Trigger | None
    broken: str | None
    pause: actions.Pause | None
    steps: list[StepView]
    sections: str  # the report's performance, uplift and A/B sections for this campaign
    occurrences: list[dict[str, Any]]
    chosen: dict[str, Any] | None
    history: list[dict[str, Any]]


def detail(con, found: Declared, campaign: str, personal: bool, occurrence: str | None = None,
           templates: Templates | None = None, settings: Settings | None = None,
           source: MeasuredFrom | None = None) -> CampaignDetail | None:
    """One campaign's page; None if no campaign of that name is declared or in the ledger."""
    source = source or measured_from(con)
    trigger, broken = found.find(campaign)
    counts = status.step_counts(con, campaign)
    if trigger is None and broken is None and not counts:
        return None
    # campaign_variants (which reads campaign_performance again) only when a step of the ledger has two
    # templates: without, the view has no row for this campaign and the A/B section says so all the same.
    tested = len({step for step, _ in counts}) < len(counts)
    measured = report_data.campaign_measurement(con, campaign, report_data.CAMPAIGN_MODELS if tested else tuple(
        m for m in report_data.CAMPAIGN_MODELS if m != "campaign_variants"), schema=source.schema)
    sections = "".join(section(measured) for section in (report_html.campaigns_section, report_html.uplift_section,
                                                         report_html.variants_section))
    history = actions.history(con, campaign)
    if not personal:
        history = [{**h, "sent_to": mask_text(h["sent_to"])} for h in history]
    page = CampaignDetail(campaign, trigger, broken, actions.paused(con).get(campaign), [], sections, [], None,
                          history)
    if trigger is None:
        return page
    allocated = allocation.allocated_now(con, campaign) if counts else {}
    page.occurrences = preview.candidates(con, trigger)
    page.chosen = next((o for o in page.occurrences if o["trigger_key"] == occurrence), None) or (
        page.occurrences[0] if page.occurrences else None)
    templates, settings = templates or Templates(), settings or load_settings()
    for step in trigger.steps:
        view = StepView(step, [{"template": t, "allocated": allocated.get(step.number, {}).get(t),
                                "counts": counts.get((step.number, t), {})} for t in step.templates],
                        test_recipient=preview.test_recipient(trigger, step.number))  # a journey's steps differ
        if page.chosen:
            for template in step.templates:
                view.renderings.append(_render(con, trigger, step, template, page.chosen["trigger_key"], templates,
                                               settings, personal, edge_case=False))
            view.renderings.append(_render(con, trigger, step, step.template, page.chosen["trigger_key"], templates,
                                           settings, personal, edge_case=True))
        page.steps.append(view)
    return page


def _render(con, trigger: Trigger, step: Step, template: str, trigger_key: str, templates: Templates,
            settings: Settings, personal: bool, edge_case: bool) -> Rendering:
    label = "edge case: no first or last name, no recommendations" if edge_case else "for this customer"
    shown = Rendering(label, template)
    try:
        message = preview.render(con, trigger, step.number, template, trigger_key, templates, settings,
                                 edge_case=edge_case, shown=None if personal else masked_row)
    except TemplateError as exc:
        shown.error = str(exc)
        return shown
    if message is None:
        shown.error = "the trigger no longer has this occurrence"
        return shown
    shown.subject, shown.html = message.subject, message.html
    if not message.html:
        shown.text = message.text
    return shown


def masked_row(row: dict[str, Any]) -> dict[str, Any]:
    """An occurrence's row as a viewer may see it rendered: the customer's (`c_*`) and the payload's (`p_*`)
    personal fields masked as on the customer pages."""
    shown = dict(row)
    for prefix in ("c_", "p_"):
        fields = {payload_name(k.removeprefix(prefix)): k for k in row if k.startswith(prefix)}
        masked = masked_profile({name: row[key] for name, key in fields.items()})
        shown.update({key: masked[name] for name, key in fields.items()})
    return shown


def test_message(con, trigger: Trigger, step: int, template: str, trigger_key: str) -> OutgoingMessage | None:
    """The step's message for the occurrence, as a test send carries it (before it is addressed)."""
    return preview.render(con, trigger, step, template, trigger_key, Templates(), load_settings())
