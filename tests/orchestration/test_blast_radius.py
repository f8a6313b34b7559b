"""One mistake stops one thing: a sync to an unknown destination, a template typo, an unreadable
destinations.yml or a trigger whose model is not built yet fails its own asset with the error
(and an alert naming it), while the code location loads and every other sync and campaign runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.orchestration.conftest import resources_for

pytestmark = pytest.mark.xdist_group("orchestration")

ROOT = Path(__file__).resolve().parents[2]
BROKEN_SYNC = "aud_champions__hubspot"
TYPO_CAMPAIGN = "win_back"
REFUSED_SYNC = "aud_favourite_on_promotion__file_export"
LOAD = """
import json
import dagster as dg
from orchestration.definitions import defs
dg.Definitions.validate_loadable(defs)
repo = defs.get_repository_def()
graph = repo.asset_graph
due = defs.resolve_job_def("due_messages")
print(json.dumps({
    "assets": {k.to_user_string(): graph.get(k).description or "" for k in graph.get_all_asset_keys()},
    "schedules": sorted(s.name for s in repo.schedule_defs), "sensors": sorted(s.name for s in repo.sensor_defs),
    "due_messages": sorted(k.to_user_string() for k in due.asset_layer.executable_asset_keys)}))
"""


def without_hubspot(folder: Path) -> Path:
    """destinations.yml without the `hubspot` instance that aud_champions' YAML sends to."""
    text = (ROOT / "destinations.yml").read_text()
    start = text.index("  hubspot:\n")
    end = text.index("\n  salesforce:\n")
    path = folder / "destinations.yml"
    path.write_text(text[:start] + text[end + 1:])
    return path


def templates_with_a_typo(folder: Path) -> Path:
    """The templates, with an unclosed tag in win_back's subject."""
    templates = folder / "templates"
    shutil.copytree(ROOT / "templates", templates)
    subject = templates / TYPO_CAMPAIGN / "subject.txt.j2"
    subject.write_text(subject.read_text() + " {{ customer.first_name }\n")
    return templates


def load_definitions(**env: Path) -> dict:
    environment = {**os.environ, **{k: str(v) for k, v in env.items()}}
    environment.pop("DAGSTER_IS_DEV_CLI", None)
    proc = subprocess.run([sys.executable, "-c", LOAD], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_code_location_loads_with_a_bad_declaration_and_a_template_typo(dbt_manifest, tmp_path):
    loaded = load_definitions(ATTIVA_DESTINATIONS=without_hubspot(tmp_path),
                              ATTIVA_TEMPLATES=templates_with_a_typo(tmp_path))
    assets = loaded["assets"]
    broken = assets[f"syncs/{BROKEN_SYNC}"]
    assert broken.startswith("Cannot run: ") and "meta.activations" in broken and "'hubspot'" in broken
    assert not assets["syncs/aud_champions__meta"].startswith("Cannot run")  # same audience, other destination
    typo = assets[f"messages/{TYPO_CAMPAIGN}"]
    assert typo.startswith("Cannot run: ") and "subject.txt.j2" in typo and "line" in typo
    assert not assets["messages/birthday"].startswith("Cannot run")
    assert "due_messages_every_5_minutes" in loaded["schedules"] and len(loaded["schedules"]) == 5
    assert {"landing_files", "fresh_events", "run_failure_alerts"} <= set(loaded["sensors"])
    # Every 5 minutes the broken campaign would only fail again: the data runs carry its alert.
    assert "messages/birthday" in loaded["due_messages"] and f"messages/{TYPO_CAMPAIGN}" not in loaded["due_messages"]


def test_an_unreadable_destinations_file_stops_the_syncs_not_the_code_location(dbt_manifest, tmp_path):
    bad = tmp_path / "destinations.yml"
    bad.write_text("destinations:\n  hubspot: [type: hubspot\n")
    loaded = load_definitions(ATTIVA_DESTINATIONS=bad)
    syncs = {k: d for k, d in loaded["assets"].items() if k.startswith("syncs/")}
    assert len(syncs) == 13 and all(d.startswith("Cannot run: ") and "not valid YAML" in d for d in syncs.values())
    assert not loaded["assets"]["messages/birthday"].startswith("Cannot run")


def _alerts(instance, result) -> list:
    from orchestration.lib.alerts import alerts_for_run

    return alerts_for_run(instance, result.dagster_run)


def test_a_sync_to_an_unknown_destination_fails_alone_with_an_alert(built, sandbox, tmp_path, monkeypatch):
    import dagster as dg

    from orchestration.defs.syncs import sync_assets

    monkeypatch.setenv("ATTIVA_DESTINATIONS", str(without_hubspot(tmp_path)))
    assets = [a for a in sync_assets() if a.key.path[-1] in (BROKEN_SYNC, "aud_champions__meta")]
    assert len(assets) == 2
    warehouse = built.copy(tmp_path / "copy")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(assets, resources=resources_for(warehouse, built.landing), instance=instance,
                            raise_on_error=False)
    assert not result.success
    done = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert done == {"aud_champions__meta"}
    [alert] = _alerts(instance, result)
    assert alert.asset_key == f"syncs/{BROKEN_SYNC}"
    assert "model 'aud_champions', field 'meta.activations" in alert.error and "'hubspot' is not in destinations.yml" in alert.error


def test_a_template_typo_fails_that_campaigns_asset_naming_file_and_line(dbt_manifest, tmp_path, monkeypatch):
    import dagster as dg

    from orchestration.defs.messages import definitions

    monkeypatch.setenv("ATTIVA_TEMPLATES", str(templates_with_a_typo(tmp_path)))
    [broken] = [a for a in definitions().assets if a.keys == {dg.AssetKey(["messages", TYPO_CAMPAIGN])}]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    [alert] = _alerts(instance, result)
    assert alert.asset_key == f"messages/{TYPO_CAMPAIGN}"
    assert f"{TYPO_CAMPAIGN}/subject.txt.j2, line 2: syntax error" in alert.error


def test_a_campaign_whose_model_is_not_built_does_not_hold_back_the_others(defs, built, sandbox, tmp_path,
                                                                           monkeypatch):
    import dagster as dg

    warehouse = built.copy(tmp_path / "copy")
    with duckdb.connect(str(warehouse)) as con:
        kind = con.execute("select table_type from information_schema.tables where table_schema = 'triggers' "
                           f"and table_name = 'trg_{TYPO_CAMPAIGN}'").fetchone()[0]
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} triggers.trg_{TYPO_CAMPAIGN}")
    monkeypatch.setenv("ATTIVA_WAREHOUSE", str(warehouse))
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("due_messages").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    done = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert len(done) == 11 and TYPO_CAMPAIGN not in done and "birthday" in done
    [alert] = _alerts(instance, result)
    assert alert.asset_key == f"messages/{TYPO_CAMPAIGN}"
    assert f"triggers.trg_{TYPO_CAMPAIGN} is not in the warehouse yet" in alert.error


def test_a_mail_server_that_cannot_be_reached_fails_its_campaigns_and_keeps_their_messages(defs, built, sandbox,
                                                                                         tmp_path, monkeypatch):
    """No connection is the same verdict for a send as for a sync: stop, keep every message, fail loudly;
    the campaigns on other channels are materialized."""
    import dagster as dg

    from orchestration.defs.messages import campaigns
    from tests.messaging.test_channels import free_port

    warehouse = built.copy(tmp_path / "copy")
    monkeypatch.setenv("ATTIVA_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("ATTIVA_SMTP_PORT", str(free_port()))  # nothing listens there
    with duckdb.connect(str(warehouse)) as con:  # the welcome email sent by the build, due again
        con.execute("update activation.message_ledger set state = 'planned', sent_at = null, provider_id = null "
                    "where campaign = 'welcome' and state = 'sent'")
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("due_messages").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    by_email = {t.campaign for t in campaigns().triggers if t.channel == "email"}
    done = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    # Every campaign on the stopped channel fails, in one alert (one step); the sales team's tasks and the
    # birthday SMS, the cart push and the on-site banner went on.
    assert done == {"mql_handoff", "birthday_sms", "abandoned_cart_push", "favourite_on_site"} and "welcome" in by_email \
        and "mql_handoff" not in by_email
    [alert] = _alerts(instance, result)
    assert {key.removeprefix("messages/") for key in alert.asset_key.split(", ")} == by_email
    assert "welcome not sent: channel 'email' stopped, its messages stay planned: smtp: cannot connect" in alert.error
    with duckdb.connect(str(warehouse), read_only=True) as con:
        lost = con.execute("select count(*) from activation.message_ledger "
                           "where reason like '%cannot connect%' and state <> 'planned'").fetchone()[0]
        held = con.execute("select count(*) from activation.message_ledger "
                           "where reason like '%cannot connect%' and state = 'planned'").fetchone()[0]
    assert lost == 0 and held >= 1


def test_a_sync_that_fails_at_run_time_does_not_hold_the_report_back(built, sandbox, tmp_path):
    """Half of aud_favourite_on_promotion vanished: its file export's guard refuses the removals and fails the step, and the
    marketer's report is still written (showing the refusal in sync health) instead of being skipped as
    downstream of a failed step."""
    import dagster as dg

    from orchestration.defs.report import REPORT_KEY, report_assets
    from orchestration.defs.syncs import sync_assets

    warehouse = built.copy(tmp_path / "copy")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from audiences.aud_favourite_on_promotion where hash(customer_id) % 2 = 0")
    syncs = [a for a in sync_assets() if a.key.path[-1] == REFUSED_SYNC]
    report = [a for a in report_assets() if REPORT_KEY in a.keys]
    result = dg.materialize([*syncs, *report], resources=resources_for(warehouse, built.landing),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == f"syncs__{REFUSED_SYNC}" and "refusing to remove" in str(failure.event_specific_data)
    done = [e for e in result.get_asset_materialization_events()]
    assert [e.asset_key for e in done] == [REPORT_KEY]
    page = Path(done[0].materialization.metadata["path"].value).read_text(encoding="utf-8")
    assert REFUSED_SYNC in page
