"""The declared campaigns, each checked on its own: a mistake in one trigger's policy, in the
channel it uses or in messaging.yml breaks what depends on it and leaves the rest sendable."""

from __future__ import annotations

import copy

import pytest

from activations import settings
from activations.manifest import load_manifest
from activations.messaging.campaigns import declared_campaigns
from activations.messaging.policy import PolicyError, triggers


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest()


def with_policy(manifest: dict, trigger: str, **changes) -> dict:
    changed = copy.deepcopy(manifest)
    changed["nodes"][f"model.attiva.{trigger}"]["config"]["meta"]["messaging"].update(changes)
    return changed


def test_every_declared_campaign_can_be_sent(manifest):
    found = declared_campaigns(manifest)
    assert len(found.triggers) == 12 and found.broken == []


def test_an_unknown_channel_breaks_only_that_campaign(manifest):
    found = declared_campaigns(with_policy(manifest, "trg_win_back", channel="pigeon"))
    assert [(b.campaign, b.name) for b in found.broken] == [("win_back", "trg_win_back")]
    assert "model 'trg_win_back', field 'meta.messaging.channel': 'pigeon' is not in channels.yml" in found.broken[0].reason
    assert len(found.triggers) == 11
    with pytest.raises(PolicyError, match="'pigeon'"):  # the strict reader still raises
        triggers(with_policy(manifest, "trg_win_back", channel="pigeon"), {"email", "sales_task", "sms", "push", "on_site"})


def test_two_triggers_with_one_campaign_break_that_campaign_only(manifest):
    found = declared_campaigns(with_policy(manifest, "trg_win_back", campaign="birthday"))
    assert [b.campaign for b in found.broken] == ["birthday"]
    assert "two triggers declare campaign 'birthday'" in found.broken[0].reason
    assert len(found.triggers) == 10 and "birthday" not in {t.campaign for t in found.triggers}


def test_a_bad_channels_entry_breaks_the_campaigns_it_sends(manifest, tmp_path, monkeypatch):
    text = (settings.project_root() / "channels.yml").read_text()
    bad = tmp_path / "channels.yml"
    bad.write_text(text.replace("    priority: High ", "    priority: Urgent "))
    monkeypatch.setenv("ATTIVA_CHANNELS", str(bad))
    found = declared_campaigns(manifest)
    assert [b.campaign for b in found.broken] == ["mql_handoff"]
    assert "sales_task" in found.broken[0].reason and "priority" in found.broken[0].reason
    assert len(found.triggers) == 11


def test_an_unreadable_messaging_file_breaks_every_campaign_and_says_so(manifest, tmp_path, monkeypatch):
    bad = tmp_path / "messaging.yml"
    bad.write_text("caps: [\n")
    monkeypatch.setenv("ATTIVA_MESSAGING", str(bad))
    found = declared_campaigns(manifest)
    assert found.triggers == [] and len(found.broken) == 12
    assert all("not valid YAML" in b.reason for b in found.broken)
