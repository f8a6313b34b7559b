"""Sync declarations in the audiences' YAML: read from the dbt manifest, every mistake named."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from activations import settings
from activations.destinations import load_destinations
from activations.manifest import SyncDeclarationError, audiences, load_manifest, syncs


@pytest.fixture(scope="module")
def manifest() -> dict:
    path = settings.dbt_project_dir() / "target" / "manifest.json"
    if not path.exists():  # `make test` parses first; a bare pytest run may not have
        dbt = Path(sys.executable).with_name("dbt")
        project = str(settings.dbt_project_dir())
        subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", project, "--profiles-dir", project], check=True)
    return load_manifest(path)


def declare(manifest: dict, audience: str, *entries: dict) -> dict:
    """The manifest with `entries` as the only syncs declared anywhere."""
    changed = copy.deepcopy(manifest)
    for other in changed["nodes"].values():
        (other.get("config", {}).get("meta") or {}).pop("activations", None)
    node = changed["nodes"][f"model.attiva.{audience}"]
    node["config"].setdefault("meta", {})["activations"] = list(entries)
    return changed


HUBSPOT = {"destination": "hubspot", "mode": "mirror", "identifiers": {"email": "email"},
           "fields": {"firstname": "first_name", "lastname": "last_name"}, "consent": "email_marketable",
           "list": "Attiva champions"}


def test_every_audience_is_found_with_its_columns(manifest):
    found = {a.name: a for a in audiences(manifest)}
    assert len(found) == 9 and found["aud_champions"].relation == "audiences.aud_champions"
    assert {"customer_id", "email", "consent_ads"} <= set(found["aud_champions"].columns)


def test_the_declared_syncs_are_valid_and_reach_every_destination(manifest):
    configs = load_destinations()
    declared = syncs(manifest, configs)
    assert {configs[s.destination].type for s in declared} == {
        "hubspot", "salesforce", "meta", "google", "mailchimp", "sendgrid", "brevo", "webhook", "file_export",
        "meta_conversions", "google_conversions", "meta_catalog", "google_merchant"}
    # Email tools hold one contact per address: those syncs are keyed on it.
    assert {s.name: s.key for s in declared if configs[s.destination].type in ("hubspot", "sendgrid")} == {
        "aud_champions__hubspot": "email", "aud_email_subscribers__sendgrid": "email"}
    # Consent is declared on every sync; only the CRM record-keeping one and the catalog's (products, not
    # people) say `none`.
    assert sorted(s.name for s in declared if s.consent is None) == [
        "aud_leads_to_nurture__salesforce", "catalog_products__google_merchant", "catalog_products__meta_catalog"]


def test_keys_dbt_tests_unique_are_known(manifest):
    found = {a.name: a for a in audiences(manifest)}
    assert "customer_id" in found["aud_champions"].unique_columns
    assert "email" not in found["aud_champions"].unique_columns


def test_a_field_cannot_pose_as_an_identifier(manifest):
    entry = {**HUBSPOT, "fields": {"email": "first_name"}}
    with pytest.raises(SyncDeclarationError, match="fields.email': a destination field name must not"):
        syncs(declare(manifest, "aud_champions", entry), load_destinations())


def test_a_valid_declaration_becomes_a_sync(manifest):
    meta_sync = {"destination": "meta", "identifiers": {"email": "email", "phone": "phone"}, "consent": "consent_ads"}
    [hubspot, meta] = syncs(declare(manifest, "aud_champions", HUBSPOT, meta_sync), load_destinations())
    assert hubspot.name == "aud_champions__hubspot" and hubspot.mode == "mirror" and hubspot.key == "customer_id"
    assert hubspot.fields == {"firstname": "first_name", "lastname": "last_name"}
    assert hubspot.guards == {"max_remove_share": 0.2, "max_shrink_share": 0.5}
    assert hubspot.destination_options == {"list": "Attiva champions"}
    assert meta.mode == "upsert" and meta.consent == "consent_ads"


@pytest.mark.parametrize(("change", "message"), [
    ({"destination": "hubspott"},
     "model 'aud_champions', field 'meta.activations[0].destination': 'hubspott' is not in destinations.yml"),
    ({"fields": {"firstname": "nickname"}}, "'meta.activations[0].fields.firstname': 'nickname' is not a column"),
    ({"identifiers": {"phone": "phone"}}, "identifiers.phone': hubspot accepts email"),
    ({"mode": "insert"}, "mode': hubspot (hubspot) cannot do insert"),
    ({"mode": "sometimes"}, "mode': expected one of upsert, update, insert, mirror or full_resync"),
    ({"consent": "consent_fax"}, "consent': 'consent_fax' is not a column"),
    ({"guards": {"max_remove_share": 2}}, "guards.max_remove_share': must be at most 1"),
    ({"colour": "blue"}, "colour': unknown option; a sync accepts: consent, destination, fields, guards, "
                         "identifiers, key, mode, name, schedule; hubspot also: list"),
    ({"list": None}, "mode': hubspot (hubspot) cannot do mirror; it can do full_resync, upsert; `list:` name of"),
    ({"list": ["a"]}, "'meta.activations[0].list': expected a string"),
])
def test_mistakes_name_the_model_and_field(manifest, change, message):
    with pytest.raises(SyncDeclarationError, match=re.escape(message)):
        syncs(declare(manifest, "aud_champions", {**HUBSPOT, **change}), load_destinations())


def test_consent_must_be_declared(manifest):
    entry = {k: v for k, v in HUBSPOT.items() if k != "consent"}
    with pytest.raises(SyncDeclarationError, match="consent': missing required option: the boolean column"):
        syncs(declare(manifest, "aud_champions", entry), load_destinations())
    explicit_none = syncs(declare(manifest, "aud_champions", {**HUBSPOT, "consent": "none"}), load_destinations())
    assert explicit_none[0].consent is None


def test_identifier_only_destinations_refuse_fields(manifest):
    entry = {"destination": "google", "identifiers": {"email": "email"}, "fields": {"x": "first_name"},
             "consent": "consent_ads"}
    with pytest.raises(SyncDeclarationError, match="google takes identifiers only"):
        syncs(declare(manifest, "aud_high_ltv_seed", entry), load_destinations())


def test_two_syncs_with_one_name_are_refused(manifest):
    with pytest.raises(SyncDeclarationError, match="two syncs are named 'aud_champions__hubspot'"):
        syncs(declare(manifest, "aud_champions", HUBSPOT, HUBSPOT), load_destinations())


def test_one_hubspot_list_belongs_to_one_sync(manifest):
    # A mirror sync takes out of its list whoever left its audience: another sync's contacts, if shared.
    other = {**HUBSPOT, "name": "champions_again", "list": "ATTIVA CHAMPIONS "}
    with pytest.raises(SyncDeclarationError, match="list': 'ATTIVA CHAMPIONS ' already belongs to sync"):
        syncs(declare(manifest, "aud_champions", HUBSPOT, other), load_destinations())
    apart = syncs(declare(manifest, "aud_champions", HUBSPOT, {**other, "list": "Champions, sales copy"}),
                  load_destinations())
    assert [s.destination_options["list"] for s in apart] == ["Attiva champions", "Champions, sales copy"]
    meta_with_list = {"destination": "meta", "identifiers": {"email": "email"}, "consent": "consent_ads", "list": "x"}
    with pytest.raises(SyncDeclarationError, match="list': unknown option"):
        syncs(declare(manifest, "aud_champions", meta_with_list), load_destinations())


def test_one_broken_declaration_leaves_the_other_syncs_runnable(manifest):
    from activations.destinations.config import read_destinations
    from activations.manifest import declared_syncs

    changed = copy.deepcopy(manifest)
    node = changed["nodes"]["model.attiva.aud_champions"]
    node["config"]["meta"]["activations"].append({**HUBSPOT, "destination": "nowhere"})
    found = declared_syncs(changed, read_destinations())
    assert [b.name for b in found.broken] == ["aud_champions__nowhere"]
    assert "model 'aud_champions', field 'meta.activations" in found.broken[0].reason and "'nowhere'" in found.broken[0].reason
    assert {s.name for s in found.syncs} == {s.name for s in syncs(manifest, load_destinations())}
    with pytest.raises(SyncDeclarationError, match="'nowhere' is not in destinations.yml"):
        syncs(changed, load_destinations())


def test_a_bad_destinations_entry_breaks_only_its_syncs(manifest, tmp_path):
    from activations.destinations.config import read_destinations
    from activations.manifest import declared_syncs

    text = (settings.project_root() / "destinations.yml").read_text()
    bad = tmp_path / "destinations.yml"
    bad.write_text(text.replace("  hubspot:\n    type: hubspot", "  hubspot:\n    type: hubspot\n    colour: blue"))
    found = declared_syncs(manifest, read_destinations(bad))
    assert [b.name for b in found.broken] == ["aud_champions__hubspot"]
    assert "destination 'hubspot', field 'colour'" in found.broken[0].reason
    assert len(found.syncs) == len(syncs(manifest, load_destinations())) - 1

    bad.write_text("destinations: [")  # unreadable: every sync is broken, with the file's error
    found = declared_syncs(manifest, read_destinations(bad))
    assert not found.syncs and all("not valid YAML" in b.reason for b in found.broken)


def test_a_conversions_model_declares_its_sync_like_an_audience(manifest):
    configs = load_destinations()
    [conversions] = [s for s in syncs(manifest, configs) if configs[s.destination].type == "meta_conversions"]
    assert (conversions.name, conversions.audience.relation, conversions.audience.layer) == (
        "conv_meta_purchases__meta_conversions", "conversions.conv_meta_purchases", "conversions")
    assert (conversions.mode, conversions.key, conversions.consent) == ("insert", "event_id", "consent_ads")
    assert "event_id" in conversions.audience.unique_columns
    # conversions are not audiences: the console and the audience gates never see them
    assert "conv_meta_purchases" not in {a.name for a in audiences(manifest)}
    [google] = [s for s in syncs(manifest, configs) if configs[s.destination].type == "google_conversions"]
    assert (google.name, google.mode, google.key, google.consent) == (
        "conv_google_purchases__google_conversions", "insert", "transaction_id", "consent_ads")
    assert "conv_google_purchases" not in {a.name for a in audiences(manifest)}


def test_the_catalog_declares_mirror_syncs_keyed_by_product_without_identifiers(manifest):
    configs = load_destinations()
    found = {configs[s.destination].type: s for s in syncs(manifest, configs) if s.audience.name == "catalog_products"}
    assert set(found) == {"meta_catalog", "google_merchant"}
    for sync in found.values():
        assert (sync.mode, sync.key, sync.identifiers, sync.consent, sync.audience.layer) == (
            "mirror", "product_id", {}, None, "catalog")
        assert {"title", "price", "sale_price", "sale_starts_at", "sale_ends_at", "link", "image_link"} <= set(sync.fields)
    assert "catalog_products" not in {a.name for a in audiences(manifest)}


@pytest.mark.parametrize(("model", "change", "message"), [
    ("catalog_products", {"identifiers": {"external_id": "product_id"}},
     "meta_catalog knows rows by their key and takes no identifiers"),
    ("catalog_products", {"fields": {"title": "title"}}, "meta_catalog needs the fields description"),
    ("aud_champions", {"identifiers": {}}, "meta needs at least one of email, phone"),
])
def test_identifiers_go_with_the_destination(manifest, model, change, message):
    declared = manifest["nodes"][f"model.attiva.{model}"]["config"]["meta"]["activations"][0]
    with pytest.raises(SyncDeclarationError, match=re.escape(message)):
        syncs(declare(manifest, model, {**declared, **change}), load_destinations())


@pytest.mark.parametrize(("change", "message"), [
    ({"fields": {"event_name": "event_name", "event_time": "event_time"}},
     "fields': meta_conversions needs the fields action_source"),
    ({"mode": "upsert"}, "mode': meta_conversions (meta_conversions) cannot do upsert; it can do insert"),
])
def test_a_conversions_sync_needs_its_event_fields_and_sends_once(manifest, change, message):
    declared = manifest["nodes"]["model.attiva.conv_meta_purchases"]["config"]["meta"]["activations"][0]
    with pytest.raises(SyncDeclarationError, match=re.escape(message)):
        syncs(declare(manifest, "conv_meta_purchases", {**declared, **change}), load_destinations())
