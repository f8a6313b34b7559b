"""Every configuration file has a typed model, one error shape and a JSON schema that says the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from activations.config import schemas
from activations.config.errors import ConfigError
from activations.destinations.config import read_destinations
from activations.listening.config import load_listening
from activations.manifest import declared_syncs, load_manifest
from activations.messaging.channels import load_usable_channels
from activations.messaging.policy import load_settings, read_triggers
from activations.serve.keys import load_keys

ROOT = Path(__file__).resolve().parent.parent


def test_the_published_schemas_are_the_models_own(tmp_path):
    """`schemas/` is what `python -m activations.config.schemas` writes today: never stale."""
    for path in schemas.write(tmp_path):
        published = ROOT / "schemas" / path.name
        assert published.exists(), f"run `python -m activations.config.schemas`: {path.name} is missing"
        assert json.loads(published.read_text()) == json.loads(path.read_text()), (
            f"schemas/{path.name} is stale: run `python -m activations.config.schemas`")


@pytest.mark.parametrize("name", ["destinations", "channels", "messaging", "serve_keys", "listening"])
def test_the_projects_own_files_pass_their_schema_and_name_it_for_editors(name):
    text = (ROOT / f"{name}.yml").read_text()
    assert text.startswith(f"# yaml-language-server: $schema=schemas/{name}.schema.json")
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)


def test_every_declaration_in_the_dbt_project_passes_its_schema():
    """The audiences' syncs and the triggers' policies, as an editor would check them."""
    manifest = load_manifest()
    checked = 0
    for node in manifest["nodes"].values():
        meta = (node.get("config") or {}).get("meta") or {}
        for key in ("activations", "messaging"):
            if key in meta:
                schema = json.loads((ROOT / "schemas" / f"meta.{key}.schema.json").read_text())
                jsonschema.validate(meta[key], schema)
                checked += 1
    assert checked >= 15  # 9 triggers and the audiences' syncs


def _mistake_in_each_file(tmp_path: Path):
    """One mistake per configuration source, each read the way the pipeline reads it."""
    bad = {
        "destinations.yml": "destinations:\n  crm:\n    type: hubspot\n    plan: gold\n",
        "channels.yml": "channels:\n  email:\n    type: smtp\n    from: Shop <shop@example.com>\n    port: true\n",
        "messaging.yml": "caps:\n  per_day: lots\n",
        "listening.yml": "brand:\n  name: Casa Lume\ncompetitors:\n  - name: Lanterna\n    aliasses: [L]\n",
        "serve_keys.yml": f"keys:\n  - name: shop\n    kind: browser\n    sha256: {'a' * 64}\n    rate_limit: {{burst: 0}}\n",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    manifest = {"nodes": {
        "model.attiva.aud_x": {"resource_type": "model", "name": "aud_x", "schema": "audiences",
                               "patch_path": "attiva://models/audiences/_x.yml", "columns": {"customer_id": {}},
                               "config": {"meta": {"activations": [{"destination": "crm", "mode": "sometimes"}]}}},
        "model.attiva.trg_x": {"resource_type": "model", "name": "trg_x", "schema": "triggers",
                               "patch_path": "attiva://models/triggers/_x.yml",
                               "columns": {c: {} for c in ("trigger_key", "customer_id", "occurred_at")},
                               "config": {"meta": {"messaging": {"channel": "email", "consent": "none",
                                                                 "steps": [{"template": "t", "delay": "2h",
                                                                            "coupon": {"discount_pct": 150}}]}}}}}}
    good_destinations = tmp_path / "good.yml"
    good_destinations.write_text("destinations:\n  crm:\n    type: hubspot\n")

    def first(errors) -> ConfigError:
        return next(iter(errors.values()))

    def catch(read) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            read()
        return caught.value

    yield "destinations.yml", first(read_destinations(tmp_path / "destinations.yml", env={}).errors)
    yield "channels.yml", first(load_usable_channels(tmp_path / "channels.yml", env={})[1])
    yield "messaging.yml", catch(lambda: load_settings(tmp_path / "messaging.yml"))
    yield "serve_keys.yml", catch(lambda: load_keys(tmp_path / "serve_keys.yml"))
    yield "listening.yml", catch(lambda: load_listening(tmp_path / "listening.yml"))
    yield "meta.activations", declared_syncs(manifest, read_destinations(good_destinations, env={})).broken[0].error
    yield "meta.messaging", read_triggers(manifest, {"email"})[1][0].error


EXPECTED = {
    "destinations.yml": ("destinations.yml", "destination 'crm'", "field 'plan'", "expected one of"),
    "channels.yml": ("channels.yml", "channel 'email'", "field 'port'", "expected an integer"),
    "messaging.yml": ("messaging.yml", None, "field 'caps.per_day'", "expected an integer"),
    "listening.yml": ("listening.yml", "competitor 'Lanterna'", "field 'aliasses'", "it accepts: aliases, name"),
    "serve_keys.yml": ("serve_keys.yml", "key 'shop'", "field 'rate_limit.burst'", "must be positive"),
    "meta.activations": ("models/audiences/_x.yml", "model 'aud_x'", "field 'meta.activations[0].mode'",
                         "expected one of upsert"),
    "meta.messaging": ("models/triggers/_x.yml", "model 'trg_x'", "field 'meta.messaging.steps[0].coupon.discount_pct'",
                       "must be at most 100"),
}


def test_every_mistake_has_one_shape_file_entry_field_and_what_is_allowed(tmp_path):
    found = dict(_mistake_in_each_file(tmp_path))
    assert set(found) == set(EXPECTED)
    for source, error in found.items():
        file, entry, field, allowed = EXPECTED[source]
        message = str(error)
        assert isinstance(error, ConfigError) and message.startswith("file "), (source, message)
        assert error.file and error.file.endswith(file), (source, message)
        assert entry is None or f", {entry}," in message, (source, message)
        assert f"{field}: " in message and allowed in message, (source, message)


def test_the_product_reads_attiva_variables_only_through_settings():
    """Every ATTIVA_* read and default lives in activations/settings.py (a subprocess's environment may be set)."""
    read = re.compile(r"""(?:environ\.get|getenv|env\.get)\(\s*f?["']ATTIVA_|environ\[\s*f?["']ATTIVA_[^\]]*\]\s*(?!=)""")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for folder in ("activations", "orchestration")
                 for path in (ROOT / folder).rglob("*.py") if path.name != "settings.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if read.search(line)]
    assert offenders == []
