"""`attiva simulate --rehearse CAMPAIGN`: try a campaign on simulated customers before it reaches real ones.

The campaign is the project's own (its trg_* model, policy and templates, beside every other campaign, so
the frequency caps, quiet hours and consent treat it as they will in production). The customers are
generated into a folder of its own (`<ATTIVA_DATA>/rehearsals/<campaign>/`, emptied first), with their
own warehouse and their own sandbox on free ports; the environment's vendor URLs, tokens and clocks are
dropped first, so nothing a rehearsal sends can reach a real vendor or a real warehouse. The world plants
the uplift the marketer expects (`--uplift`, the chance a received message causes a purchase for an
average person), runs the pipeline over the simulated days, and prints what happened to the campaign's
messages (sent, suppressed and why, held out) and whether its holdout could tell the planted uplift from
none: the measured uplift, its 95 % interval, and the expected one.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from activations import settings
from simulator.run import CampaignCheck, plant_world, simulate

# What says which project is rehearsed (its files and dbt manifest) and how much memory it may take: kept.
# Every other ATTIVA_ variable (vendor URLs, tokens, ports, clocks, the warehouse's path) is dropped.
PROJECT_VARIABLES = ("ATTIVA_HOME", "ATTIVA_TEMPLATES", "ATTIVA_CHANNELS", "ATTIVA_DESTINATIONS", "ATTIVA_MESSAGING",
                     "ATTIVA_MANIFEST", "ATTIVA_SYNC_MEMORY_LIMIT", "ATTIVA_MATCHING_MEMORY_LIMIT")


class RehearsalError(Exception):
    pass


@dataclass(frozen=True)
class Rehearsal:
    campaign: str
    folder: Path
    counts: dict[str, int]  # ledger state -> rows
    suppressed_by: dict[str, int]
    check: CampaignCheck | None  # once a window closed
    ok: bool


def isolate(folder: Path, environ: dict[str, str] | None = None, mail_channels: list[str] = ()) -> None:
    """Point everything at `folder` and at a sandbox of its own: drop the environment's ATTIVA_ variables
    but the project's, and DAGSTER_HOME (the rehearsal's runs stay out of the real instance). The SMTP
    channels named in `mail_channels` are pointed at the sandbox's mail server too: channels.yml may name
    a real one (`host:`), which ATTIVA_<NAME>_HOST and _PORT override."""
    environ = os.environ if environ is None else environ
    for name in [n for n in environ if (n.startswith("ATTIVA_") and n not in PROJECT_VARIABLES) or n == "DAGSTER_HOME"]:
        del environ[name]
    environ["ATTIVA_DATA"] = str(folder)
    environ["ATTIVA_SANDBOX_PORT"] = str(_free_port())
    environ["ATTIVA_SMTP_PORT"] = str(_free_port())
    for channel in mail_channels:
        environ[f"{settings.instance_prefix(channel)}_HOST"] = "127.0.0.1"
        environ[f"{settings.instance_prefix(channel)}_PORT"] = environ["ATTIVA_SMTP_PORT"]


def rehearse(campaign: str, uplift: float, days: int = 14, every: int = 7, customers: int = 20_000,
             seed: int = 42) -> Rehearsal:
    from activations import warehouse
    from activations.manifest import load_manifest
    from activations.messaging import status
    from activations.messaging.campaigns import declared_campaigns
    from activations.messaging.channels import load_channel_entries

    declared = declared_campaigns(load_manifest())
    names = sorted(t.campaign for t in declared.triggers)
    if campaign not in names:
        broken = {b.campaign: b.reason for b in declared.broken}
        if campaign in broken:
            raise RehearsalError(f"campaign {campaign!r} cannot be sent: {broken[campaign]}")
        raise RehearsalError(f"no campaign {campaign!r}: declared ones are {', '.join(names)}")
    if not 0 <= uplift < 1:
        raise RehearsalError("--uplift is a share from 0 to below 1, e.g. 0.03 for 3 %")
    folder = settings.data_dir().resolve() / "rehearsals" / campaign
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    isolate(folder, mail_channels=[name for name, entry in load_channel_entries().items()
                                   if isinstance(entry, dict) and entry.get("type") == "smtp"])
    print(f"==> rehearsing {campaign} on {customers:,} simulated customers in {folder}, planted uplift {uplift:.1%}")

    from demo.pipeline import generate_if_empty, pin_daytime, pipeline_sandbox, run_everything

    pin_daytime()
    generate_if_empty(customers, seed)
    plant_world(seed)
    with pipeline_sandbox():
        first = run_everything()
        simulated = simulate(days=days, every=every, seed=seed, uplift={campaign: uplift})
    with warehouse.connect(read_only=True) as con:
        found = status.campaigns(con, campaign)
    counts, suppressed = (found[0].counts, found[0].suppressed_by) if found else ({}, {})
    check = next((c for c in simulated.checks if c.campaign == campaign), None)
    return Rehearsal(campaign, folder, counts, suppressed, check, first.success and simulated.ok)


def describe(rehearsal: Rehearsal) -> str:
    lines = [f"==> rehearsal of {rehearsal.campaign} (everything it wrote: {rehearsal.folder})"]
    counts = rehearsal.counts
    planned = sum(counts.values())
    lines.append(f"  {planned:,} messages planned: " + (", ".join(f"{n:,} {s}" for s, n in sorted(counts.items()))
                                                       or "none (nobody matched the trigger)"))
    if rehearsal.suppressed_by:
        lines.append("  suppressed: " + ", ".join(f"{n:,} {why}" for why, n in
                                                  sorted(rehearsal.suppressed_by.items(), key=lambda x: -x[1])))
    c = rehearsal.check
    if c is None:
        lines.append("  uplift: no message's attribution window closed; rehearse more days (--days)")
    elif c.too_small or c.low is None:
        lines.append(f"  uplift: too small to say with {c.treated:,} treated and {c.holdout:,} held out; the world "
                     f"planted {c.expected:+.2%}. A larger holdout or a longer run would tell")
    else:
        verdict = ("the holdout tells it from no effect" if c.low > 0 else
                   "the interval holds 0: this holdout cannot tell it from no effect")
        lines.append(f"  uplift: measured {c.measured:+.2%} (95 % {c.low:+.2%} to {c.high:+.2%}) against "
                     f"{c.expected:+.2%} planted for these customers, {c.treated:,} treated and {c.holdout:,} held "
                     f"out: {verdict}")
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
